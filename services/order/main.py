"""The order service's composition root."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from services.order.repository import unit_of_work, versions_of
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
from services.platform.metrics import Metrics, OldestAge, Sampler
from services.platform.publishing import consuming, outbox_publishing
from services.platform.resilience import guard
from services.platform.server import ServiceDefinition
from services.platform.service_token import ServiceToken

SERVICE = pb.DESCRIPTOR.services_by_name["OrderService"].full_name
CATALOG = catalog_pb.DESCRIPTOR.services_by_name["CatalogService"].full_name
INVENTORY = inventory_pb.DESCRIPTOR.services_by_name["InventoryService"].full_name
PAYMENT = payment_pb.DESCRIPTOR.services_by_name["PaymentService"].full_name
SHIPMENT_DISPATCHED = fulfillment_events.ShipmentDispatched.DESCRIPTOR.full_name
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


@dataclass(frozen=True)
class _Channels:
    """The order service's guarded channels to the services it calls."""

    catalog: aio.Channel
    inventory: aio.Channel
    payment: aio.Channel
    fulfillment: aio.Channel
    token: ServiceToken

    async def close(self) -> None:
        for channel in (self.catalog, self.inventory, self.payment, self.fulfillment):
            await channel.close()
        await self.token.close()


def _channels(settings: Settings, metrics: Metrics) -> _Channels:
    """Catalog is called as the user; inventory, payment and fulfillment with the service
    token. Every channel is guarded (bulkhead and breaker per downstream)."""
    call_timeout = settings.seconds("EMPORIUM_ORDER_CALL_TIMEOUT_SECONDS", 5.0)
    token = ServiceToken(settings, "order", metrics=metrics)

    def to(name: str, retryable: list[tuple[str, str]], *, as_service: bool = True) -> aio.Channel:
        gates = guard(name, settings, metrics)
        return open_channel(
            settings.target(name),
            retryable=retryable,
            default_timeout=call_timeout,
            middlewares=[token.middleware(), *gates] if as_service else gates,
        )

    return _Channels(
        catalog=to(
            "catalog",
            [(CATALOG, "BatchGetProducts"), (CATALOG, "GetProduct")],
            as_service=False,
        ),
        inventory=to("inventory", [(INVENTORY, "GetStock")]),
        payment=to("payment", [(PAYMENT, "GetPayment")]),
        fulfillment=to("fulfillment", []),
        token=token,
    )


def _retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        budget_seconds=settings.seconds("EMPORIUM_SAGA_RETRY_BUDGET_SECONDS", 600.0),
        base_delay=settings.seconds("EMPORIUM_SAGA_RETRY_BASE_SECONDS", 0.05),
    )


def _sagas(
    settings: Settings,
    metrics: Metrics,
    store: SqlSagaStore,
    lease: Lease,
    channels: _Channels,
    policy: RetryPolicy,
    before_step: StepHook | None,
) -> SagaRunner:
    saga = Saga(
        store,
        GrpcInventory(
            inventory_grpc.InventoryServiceStub(channels.inventory),
            policy.reservation_ttl_seconds(),
        ),
        GrpcPayments(payment_grpc.PaymentServiceStub(channels.payment)),
        policy=policy,
        on_end=_saga_metrics(metrics),
        before_step=before_step,
    )
    return SagaRunner(
        saga,
        store,
        lease_seconds=lease.seconds,
        max_concurrent=settings.bulkhead_max_concurrent,
        drain_seconds=settings.seconds("EMPORIUM_SAGA_DRAIN_SECONDS", 5.0),
    )


async def build(
    settings: Settings, metrics: Metrics, *, before_step: StepHook | None = None
) -> ServiceDefinition:
    """Environment (all optional): ``EMPORIUM_SAGA_RETRY_BUDGET_SECONDS`` [600],
    ``EMPORIUM_SAGA_RETRY_BASE_SECONDS`` [0.05], ``EMPORIUM_ORDER_CALL_TIMEOUT_SECONDS`` [5],
    plus the platform's variables; ``SERVICE_CREDENTIALS`` must hold ``order:<secret>``."""
    db = Database(settings.database_url, MIGRATIONS)
    await db.migrate()
    channels = _channels(settings, metrics)
    notifier = Notifier(interval=settings.seconds("EMPORIUM_ORDER_WATCH_POLL_SECONDS", 0.2))
    committed = notifier.notify  # after a commit that appended an order's events
    policy = _retry_policy(settings)
    lease = Lease(instance_id(), settings.seconds("EMPORIUM_SAGA_LEASE_SECONDS", 10.0))
    uow = unit_of_work(db, committed)
    notifier.poll(versions_of(uow))  # changes committed by other order instances
    store = SqlSagaStore(uow, now_us, lease)
    sagas = _sagas(settings, metrics, store, lease, channels, policy, before_step)
    queries = OrderQueries(uow, notifier)
    commands = OrderCommands(
        uow,
        GrpcCatalog(catalog_grpc.CatalogServiceStub(channels.catalog)),
        GrpcFulfillment(fulfillment_grpc.FulfillmentServiceStub(channels.fulfillment)),
        sagas,
        queries,
        lease,
    )

    # The relay is woken by the database's commit hook (order events go through the outbox).
    start_publishing, stop_publishing = outbox_publishing(settings, db, metrics)
    start_consuming, stop_consuming = consuming(
        settings,
        db,
        metrics,
        contexts=["fulfillment"],
        handlers={SHIPMENT_DISPATCHED: uow.event_handler(ShipmentRecorder())},
    )
    saga_gauges = _running_sagas(metrics, store, policy.budget_seconds)
    return runner.definition(
        settings,
        metrics,
        OrderServicer(commands, queries),
        pb_grpc.add_OrderServiceServicer_to_server,
        SERVICE,
        # Not the bus: with the outbox, orders are taken while Redis is away.
        readiness=[db.ping],
        on_start=[*start_publishing, *start_consuming, sagas.begin, saga_gauges.start],
        on_stop=[
            sagas.stop,
            saga_gauges.stop,
            *stop_consuming,
            *stop_publishing,
            channels.close,
            notifier.close,
            db.dispose,
        ],
    )


def main() -> None:
    runner.run("order", build)
