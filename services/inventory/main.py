"""Inventory's composition root."""

from __future__ import annotations

from pathlib import Path

from emporium.inventory.v1 import inventory_service_pb2 as pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

from services.inventory.handlers import Inventory
from services.inventory.repository import SqlInventoryTx
from services.inventory.service import InventoryServicer
from services.platform import runner
from services.platform.config import Settings
from services.platform.db import Database
from services.platform.metrics import Metrics
from services.platform.publishing import outbox_publishing
from services.platform.server import ServiceDefinition
from services.platform.sweeper import Sweeper
from services.platform.uow import SqlUnitOfWork

SERVICE = pb.DESCRIPTOR.services_by_name["InventoryService"].full_name
PUBLIC = [f"/{SERVICE}/GetStock"]
MIGRATIONS = Path(__file__).parent / "migrations"
#: Seconds between sweeps for expired reservations (tests shorten it).
SWEEP_INTERVAL_ENV = "EMPORIUM_INVENTORY_SWEEP_INTERVAL_SECONDS"
DEFAULT_SWEEP_INTERVAL = 1.0


async def build(settings: Settings, metrics: Metrics) -> ServiceDefinition:
    interval = settings.seconds(SWEEP_INTERVAL_ENV, DEFAULT_SWEEP_INTERVAL)
    db = Database(settings.database_url, MIGRATIONS)
    await db.migrate()
    inventory = Inventory(SqlUnitOfWork(db, SqlInventoryTx))
    sweeper = Sweeper(inventory.expire_due, interval, "inventory-reservations")

    start_publishing, stop_publishing = outbox_publishing(settings, db, metrics)

    return runner.definition(
        settings,
        metrics,
        InventoryServicer(inventory),
        pb_grpc.add_InventoryServiceServicer_to_server,
        SERVICE,
        public_methods=PUBLIC,
        readiness=[db.ping],
        on_start=[sweeper.start, *start_publishing],
        on_stop=[*stop_publishing, sweeper.stop, db.dispose],
    )


def main() -> None:
    runner.run("inventory", build)
