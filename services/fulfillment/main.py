"""Fulfillment's composition root.

With ``REDIS_URL`` set, a consumer (group ``fulfillment``) feeds OrderConfirmed from the
order stream to :func:`handle_order_confirmed` (in the consumer's transaction, through the
unit of work's repositories) and an outbox relay publishes the shipment events; without it
the service still serves GetShipment.
"""

from __future__ import annotations

from pathlib import Path

from emporium.fulfillment.v1 import fulfillment_service_pb2 as pb
from emporium.fulfillment.v1 import fulfillment_service_pb2_grpc as pb_grpc

from services.fulfillment.handlers import ORDER_CONFIRMED, Fulfillment, handle_order_confirmed
from services.fulfillment.repository import SqlFulfillmentTx
from services.fulfillment.service import FulfillmentServicer
from services.platform import runner
from services.platform.config import Settings
from services.platform.db import Database
from services.platform.metrics import Metrics
from services.platform.publishing import consuming, outbox_publishing
from services.platform.server import Hook, ServiceDefinition
from services.platform.uow import SqlUnitOfWork

SERVICE = pb.DESCRIPTOR.services_by_name["FulfillmentService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"
GROUP = "fulfillment"


async def build(settings: Settings, metrics: Metrics) -> ServiceDefinition:
    db = Database(settings.database_url, MIGRATIONS)
    await db.migrate()
    uow = SqlUnitOfWork(db, SqlFulfillmentTx)
    fulfillment = Fulfillment(uow)
    start_publishing, stop_publishing = outbox_publishing(settings, db, metrics)
    start_consuming, stop_consuming = consuming(
        settings,
        db,
        metrics,
        group=GROUP,
        contexts=["order"],
        handlers={ORDER_CONFIRMED: uow.event_handler(handle_order_confirmed)},
    )
    on_start: list[Hook] = [*start_publishing, *start_consuming]
    on_stop: list[Hook] = [*stop_consuming, *stop_publishing, db.dispose]

    return runner.definition(
        settings,
        metrics,
        FulfillmentServicer(fulfillment),
        pb_grpc.add_FulfillmentServiceServicer_to_server,
        SERVICE,
        readiness=[db.ping],
        on_start=on_start,
        on_stop=on_stop,
    )


def main() -> None:
    runner.run("fulfillment", build)
