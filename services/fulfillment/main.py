"""Fulfillment's composition root.

With ``REDIS_URL`` set, a consumer (group ``fulfillment``) feeds OrderConfirmed from the
order stream to :func:`handle_order_confirmed` and an outbox relay publishes the shipment
events; without it the service still serves GetShipment.
"""

from __future__ import annotations

from pathlib import Path

from emporium.fulfillment.v1 import fulfillment_service_pb2 as pb
from emporium.fulfillment.v1 import fulfillment_service_pb2_grpc as pb_grpc
from grpc import aio

from services.fulfillment.handlers import ORDER_CONFIRMED, Fulfillment, handle_order_confirmed
from services.fulfillment.service import FulfillmentServicer
from services.platform import runner
from services.platform.bus import Bus, stream_name
from services.platform.config import Settings
from services.platform.consumer import Consumer
from services.platform.db import Database
from services.platform.keys import identity_verifier
from services.platform.metrics import Metrics
from services.platform.relay import OutboxRelay
from services.platform.server import Hook, ServiceDefinition

SERVICE = pb.DESCRIPTOR.services_by_name["FulfillmentService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"
GROUP = "fulfillment"


async def build(settings: Settings, metrics: Metrics) -> ServiceDefinition:
    db = Database(settings.database_url, MIGRATIONS)
    await db.migrate()
    fulfillment = Fulfillment(db)
    on_start: list[Hook] = []
    on_stop: list[Hook] = [db.dispose]
    if settings.redis_url:
        bus = Bus.from_url(settings.redis_url)
        relay = OutboxRelay(db, bus, metrics=metrics)
        consumer = Consumer(
            db,
            bus,
            group=GROUP,
            streams=[stream_name("order")],
            handlers={ORDER_CONFIRMED: handle_order_confirmed},
            metrics=metrics,
            after_commit=relay.notify,
        )
        on_start += [relay.start, consumer.start]
        on_stop[:0] = [consumer.stop, relay.stop, bus.close]

    def register(server: aio.Server) -> None:
        pb_grpc.add_FulfillmentServiceServicer_to_server(FulfillmentServicer(fulfillment), server)

    return ServiceDefinition(
        name=settings.service,
        register=register,
        service_names=[SERVICE],
        middlewares=runner.standard_middlewares(
            settings, metrics, identity_verifier(settings), public_methods=[]
        ),
        readiness=[db.ping],
        on_start=on_start,
        on_stop=on_stop,
    )


def main() -> None:
    runner.run("fulfillment", build)
