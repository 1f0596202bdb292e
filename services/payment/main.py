"""Payment's composition root."""

from __future__ import annotations

from pathlib import Path

from emporium.payment.v1 import payment_service_pb2 as pb
from emporium.payment.v1 import payment_service_pb2_grpc as pb_grpc

from services.payment.handlers import DEFAULT_HOLD_SECONDS, Payments
from services.payment.processor import SimulatedProcessor
from services.payment.repository import SqlPaymentTx
from services.payment.service import PaymentServicer
from services.platform import runner
from services.platform.config import Settings
from services.platform.db import Database
from services.platform.metrics import Metrics
from services.platform.publishing import outbox_publishing
from services.platform.server import ServiceDefinition
from services.platform.sweeper import Sweeper
from services.platform.uow import SqlUnitOfWork

SERVICE = pb.DESCRIPTOR.services_by_name["PaymentService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"
#: How long the service waits for the processor before recording the payment FAILED.
PROCESSOR_TIMEOUT_ENV = "EMPORIUM_PAYMENT_PROCESSOR_TIMEOUT_SECONDS"
#: How long the simulated processor hangs on the timeout test card.
SLOW_CARD_ENV = "EMPORIUM_PAYMENT_SLOW_CARD_SECONDS"
#: How long an authorization holds its amount (docs/payments.md: longer than any saga).
HOLD_ENV = "EMPORIUM_PAYMENT_AUTHORIZATION_HOLD_SECONDS"
#: Seconds between sweeps that void expired authorizations.
SWEEP_INTERVAL_ENV = "EMPORIUM_PAYMENT_SWEEP_INTERVAL_SECONDS"
#: A hold may be configured up to 30 days (card networks hold for 7 to 30).
MAX_HOLD_SECONDS = 30 * 24 * 3600.0


async def build(settings: Settings, metrics: Metrics) -> ServiceDefinition:
    processor_timeout = settings.seconds(PROCESSOR_TIMEOUT_ENV, 5.0)
    processor = SimulatedProcessor(slow_card_seconds=settings.seconds(SLOW_CARD_ENV, 10.0))
    hold = settings.seconds(HOLD_ENV, DEFAULT_HOLD_SECONDS, maximum=MAX_HOLD_SECONDS)
    sweep_interval = settings.seconds(SWEEP_INTERVAL_ENV, 60.0)
    db = Database(settings.database_url, MIGRATIONS)
    await db.migrate()
    # The relay is woken by Database.on_commit after commits that wrote events.
    on_start, stop_publishing = outbox_publishing(settings, db, metrics)
    uow = SqlUnitOfWork(db, SqlPaymentTx)
    payments = Payments(uow, processor, processor_timeout=processor_timeout, hold_seconds=hold)
    sweeper = Sweeper(payments.expire_due, sweep_interval, "payment-holds")

    return runner.definition(
        settings,
        metrics,
        PaymentServicer(payments),
        pb_grpc.add_PaymentServiceServicer_to_server,
        SERVICE,
        readiness=[db.ping],
        on_start=[sweeper.start, *on_start],
        on_stop=[*stop_publishing, sweeper.stop, db.dispose],
    )


def main() -> None:
    runner.run("payment", build)
