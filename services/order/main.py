"""The order service's composition root."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.fulfillment.v1 import events_pb2 as fulfillment_events
from emporium.fulfillment.v1 import fulfillment_service_pb2_grpc as fulfillment_grpc
from emporium.inventory.v1 import inventory_service_pb2 as inventory_pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as inventory_grpc
from emporium.order.v1 import order_service_pb2 as pb
from emporium.order.v1 import order_service_pb2_grpc as pb_grpc
from emporium.payment.v1 import payment_service_pb2 as payment_pb
from emporium.payment.v1 import payment_service_pb2_grpc as payment_grpc
from grpc import aio
from prometheus_client import Counter, Gauge, Histogram

from services.order.downstream import (
    GrpcCatalog,
    GrpcFulfillment,
    GrpcInventory,
    GrpcPayments,
)
from services.order.handlers import OrderCommands
from services.order.notifier import Notifier
from services.order.queries import OrderQueries
from services.order.saga import Outcome, RetryPolicy, Saga, StepHook
from services.order.saga_runner import SagaRunner
from services.order.saga_store import Lease, SqlSagaStore
from services.order.service import OrderServicer
from services.order.shipments import ShipmentRecorder
from services.platform import runner
from services.platform.clients import open_channel
from services.platform.clock import now_us
from services.platform.config import Settings
from services.platform.db import Database
from services.platform.keys import identity_verifier
from services.platform.metrics import Metrics, OldestAge, Sampler
from services.platform.publishing import consuming, outbox_publishing
from services.platform.resilience import guard
from services.platform.server import ServiceDefinition
from services.platform.service_token import ServiceToken

SERVICE = pb.DESCRIPTOR.services_by_name["OrderService"].full_name
CATALOG = catalog_pb.DESCRIPTOR.services_by_name["CatalogService"].full_name
INVENTORY = inventory_pb.DESCRIPTOR.services_by_name["InventoryService"].full_name
PAYMENT = payment_pb.DESCRIPTOR.services_by_name["PaymentService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"
SAGA_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

Hook = Callable[[], Awaitable[None]]


def instance_id() -> str:
    """This process's name as a saga owner: unique per run (a restarted process is a new
    owner and adopts its predecessor's sagas once their leases expire)."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _saga_metrics(metrics: Metrics) -> Callable[[Outcome, float], None]:
    duration = Histogram(
        "emporium_saga_duration_seconds",
        "Time from an order's saga start to its end, by outcome.",
        ["outcome"],
        buckets=SAGA_BUCKETS,
        registry=metrics.registry,
    )
    outcomes = Counter(
        "emporium_saga_outcomes_total",
        "Sagas ended, by outcome.",
        ["outcome"],
        registry=metrics.registry,
    )

    def ended(outcome: Outcome, seconds: float) -> None:
        duration.labels(outcome.value).observe(seconds)
        outcomes.labels(outcome.value).inc()

    return ended


def _running_sagas(metrics: Metrics, store: SqlSagaStore, budget_seconds: float) -> Sampler:
    """Gauges of the sagas still running (sampled from the table every two seconds), for
    the alert on sagas that run past their budget (observability/prometheus)."""
    running = Gauge("emporium_sagas_running", "Sagas not yet ended.", registry=metrics.registry)
    oldest = OldestAge(
        metrics.registry,
        "emporium_saga_oldest_running_seconds",
        "Age of the oldest saga not yet ended (0 when none runs).",
    )
    budget = Gauge(
        "emporium_saga_budget_seconds",
        "How long a saga step waits out outages before giving up "
        "(EMPORIUM_SAGA_RETRY_BUDGET_SECONDS).",
        registry=metrics.registry,
    )
    budget.set(budget_seconds)

    async def probe() -> None:
        count, oldest_us = await store.running()
        running.set(count)
        oldest.track(oldest_us)

    return Sampler(probe)


async def build(
    settings: Settings, metrics: Metrics, *, before_step: StepHook | None = None
) -> ServiceDefinition:
    """Environment (all optional): ``EMPORIUM_SAGA_RETRY_BUDGET_SECONDS`` [600],
    ``EMPORIUM_SAGA_RETRY_BASE_SECONDS`` [0.05], ``EMPORIUM_ORDER_CALL_TIMEOUT_SECONDS`` [5],
    plus the platform's variables; ``SERVICE_CREDENTIALS`` must hold ``order:<secret>``."""
    db = Database(settings.database_url, MIGRATIONS)
    await db.migrate()
    call_timeout = settings.seconds("EMPORIUM_ORDER_CALL_TIMEOUT_SECONDS", 5.0)
    token = ServiceToken(settings, "order", metrics=metrics)
    catalog_channel = open_channel(
        settings.target("catalog"),
        retryable=[(CATALOG, "BatchGetProducts"), (CATALOG, "GetProduct")],
        default_timeout=call_timeout,
        interceptors=guard("catalog", settings, metrics),
    )
    inventory_channel = open_channel(
        settings.target("inventory"),
        retryable=[(INVENTORY, "GetStock")],
        default_timeout=call_timeout,
        interceptors=[token.interceptor(), *guard("inventory", settings, metrics)],
    )
    payment_channel = open_channel(
        settings.target("payment"),
        retryable=[(PAYMENT, "GetPayment")],
        default_timeout=call_timeout,
        interceptors=[token.interceptor(), *guard("payment", settings, metrics)],
    )
    fulfillment_channel = open_channel(
        settings.target("fulfillment"),
        default_timeout=call_timeout,
        interceptors=[token.interceptor(), *guard("fulfillment", settings, metrics)],
    )

    notifier = Notifier()

    def committed(order_id: str) -> None:
        notifier.notify(order_id)

    policy = RetryPolicy(
        budget_seconds=settings.seconds("EMPORIUM_SAGA_RETRY_BUDGET_SECONDS", 600.0),
        base_delay=settings.seconds("EMPORIUM_SAGA_RETRY_BASE_SECONDS", 0.05),
    )
    lease = Lease(instance_id(), settings.seconds("EMPORIUM_SAGA_LEASE_SECONDS", 10.0))
    store = SqlSagaStore(db, now_us, lease, committed)
    saga = Saga(
        store,
        GrpcInventory(
            inventory_grpc.InventoryServiceStub(inventory_channel),
            policy.reservation_ttl_seconds(),
        ),
        GrpcPayments(payment_grpc.PaymentServiceStub(payment_channel)),
        policy=policy,
        on_end=_saga_metrics(metrics),
        before_step=before_step,
    )
    sagas = SagaRunner(
        saga,
        store,
        lease_seconds=lease.seconds,
        max_concurrent=settings.bulkhead_max_concurrent,
        drain_seconds=settings.seconds("EMPORIUM_SAGA_DRAIN_SECONDS", 5.0),
    )
    shipments = ShipmentRecorder(committed)
    queries = OrderQueries(db, notifier)
    commands = OrderCommands(
        db,
        GrpcCatalog(catalog_grpc.CatalogServiceStub(catalog_channel)),
        GrpcFulfillment(fulfillment_grpc.FulfillmentServiceStub(fulfillment_channel)),
        sagas,
        queries,
        lease,
        on_commit=committed,
    )

    # The relay is woken by the database's commit hook (order events go through the outbox).
    start_publishing, stop_publishing = outbox_publishing(settings, db, metrics)
    start_consuming, stop_consuming = consuming(
        settings,
        db,
        metrics,
        contexts=["fulfillment"],
        session_handlers={fulfillment_events.ShipmentDispatched.DESCRIPTOR.full_name: shipments},
    )
    on_start: list[Hook] = [*start_publishing, *start_consuming]
    on_stop: list[Hook] = [*stop_consuming, *stop_publishing]
    # Not the bus: with the outbox, orders are taken while Redis is away.
    readiness: list[Hook] = [db.ping]

    on_start.append(sagas.begin)
    saga_gauges = _running_sagas(metrics, store, policy.budget_seconds)
    on_start.append(saga_gauges.start)
    on_stop.insert(0, saga_gauges.stop)

    async def close_channels() -> None:
        channels = (catalog_channel, inventory_channel, payment_channel, fulfillment_channel)
        for channel in channels:
            await channel.close()
        await token.close()

    def register(server: aio.Server) -> None:
        pb_grpc.add_OrderServiceServicer_to_server(OrderServicer(commands, queries), server)

    return ServiceDefinition(
        name=settings.service,
        register=register,
        service_names=[SERVICE],
        middlewares=runner.standard_middlewares(settings, metrics, identity_verifier(settings), []),
        readiness=readiness,
        on_start=on_start,
        on_stop=[sagas.stop, *on_stop, close_channels, db.dispose],
        extra={"sagas": sagas},
    )


def main() -> None:
    runner.run("order", build)
