"""Catalog's composition root."""

from __future__ import annotations

from pathlib import Path

from emporium.catalog.v1 import catalog_service_pb2 as pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as pb_grpc

from services.catalog.follower import CatalogFollower
from services.catalog.handlers import Catalog
from services.catalog.repository import SqlCatalogTx
from services.catalog.service import CatalogServicer
from services.platform import runner
from services.platform.bus import Bus
from services.platform.config import Settings
from services.platform.db import Database
from services.platform.metrics import Metrics
from services.platform.publishing import outbox_publishing
from services.platform.server import ServiceDefinition
from services.platform.uow import SqlUnitOfWork

SERVICE = pb.DESCRIPTOR.services_by_name["CatalogService"].full_name
PUBLIC = [
    f"/{SERVICE}/{method}"
    for method in ("ListProducts", "GetProduct", "BatchGetProducts", "ListCategories")
]
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: Settings, metrics: Metrics) -> ServiceDefinition:
    db = Database(settings.database_url, MIGRATIONS)
    await db.migrate()
    catalog = Catalog(SqlUnitOfWork(db, SqlCatalogTx))
    await catalog.load()
    start_publishing, stop_publishing = outbox_publishing(settings, db, metrics)
    if settings.redis_url:  # other replicas' writes reach this one's cache as events
        bus = Bus.from_url(settings.redis_url)
        follower = CatalogFollower(bus, catalog.refresh, catalog.load)
        start_publishing = [*start_publishing, follower.start]
        stop_publishing = [follower.stop, bus.close, *stop_publishing]

    return runner.definition(
        settings,
        metrics,
        CatalogServicer(catalog),
        pb_grpc.add_CatalogServiceServicer_to_server,
        SERVICE,
        public_methods=PUBLIC,
        readiness=[db.ping],
        on_start=start_publishing,
        on_stop=[*stop_publishing, db.dispose],
    )


def main() -> None:
    runner.run("catalog", build)
