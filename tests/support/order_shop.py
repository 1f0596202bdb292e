"""The order service on fakes, for unit tests: its commands, queries, saga store and
shipment recorder over :class:`~tests.support.fakes.order.FakeOrderUnitOfWork`, with a fake
catalog, fulfillment and saga runner and a clock the test moves. Like the servicer, the
shop acts for the caller set with :func:`services.platform.auth.set_caller`."""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import cast

from emporium.fulfillment.v1 import events_pb2 as fulfillment_events

from services.order.domain import Address, Card, Money, PlaceOrder, Product, RequestedLine
from services.order.handlers import OrderCommands
from services.order.notifier import Notifier
from services.order.projector import OrderView
from services.order.queries import Change, OrderQueries
from services.order.saga import Outcome, SagaState, Step
from services.order.saga_runner import SagaRunner
from services.order.saga_store import Lease, SqlSagaStore
from services.order.shipments import ShipmentRecorder
from services.platform import auth, outbox
from services.platform.clock import timestamp
from services.platform.outbox import Envelope
from tests.support.fakes.order import FakeOrderUnitOfWork

NOW = 1_700_000_000_000_000
LEASE = Lease("instance-a", 10.0)
CARD = Card("4242424242424242", 12, 2030, "123", "Ada Lovelace")
ADDRESS = Address("Ada Lovelace", "1 St James's Square", "", "London", "SW1Y 4JU", "GB")
TEA = Product("p-tea", "TEA-1", "Assam tea", Money(450, "EUR"), active=True)
MUG = Product("p-mug", "MUG-1", "Mug", Money(1200, "EUR"), active=True)
OLD = Product("p-old", "OLD-1", "Withdrawn", Money(100, "EUR"), active=False)
ALICE = auth.Caller("alice", "alice", frozenset())
BOB = auth.Caller("bob", "bob", frozenset())
ADMIN = auth.Caller("admin:root", "root", frozenset({auth.ADMIN_ROLE}))


def order_command(key: str = "key-1", *lines: tuple[str, int]) -> PlaceOrder:
    """PlaceOrder of ``lines`` (product id, quantity); two teas unless told."""
    requested = tuple(RequestedLine(p, q) for p, q in lines or [("p-tea", 2)])
    return PlaceOrder(key, requested, CARD, ADDRESS)


def dispatched(order_id: str, shipment_id: str = "ship-1", at_us: int = 0) -> Envelope:
    """Fulfillment's ShipmentDispatched (``at_us`` 0: no dispatch time)."""
    event = fulfillment_events.ShipmentDispatched(
        shipment_id=shipment_id, order_id=order_id, carrier="Test Carrier", tracking_number="T-1"
    )
    if at_us:
        event.occur_time.CopyFrom(timestamp(at_us))
    return outbox.envelope(event, shipment_id)


class FakeCatalog:
    """The products it was given; ``meanwhile`` runs once, inside the next lookup."""

    def __init__(self, *products: Product) -> None:
        self.known = {product.product_id: product for product in products}
        self.calls: list[list[str]] = []
        self.meanwhile: Callable[[], Awaitable[object]] | None = None

    async def products(self, product_ids: Sequence[str]) -> Mapping[str, Product]:
        self.calls.append(list(product_ids))
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            await meanwhile()
        return {i: self.known[i] for i in product_ids if i in self.known}


class FakeFulfillment:
    """Agrees to every cancellation unless ``refusal`` is set (then raises it)."""

    def __init__(self) -> None:
        self.refusal: Exception | None = None
        self.calls: list[tuple[str, str]] = []

    async def cancel_shipment(self, order_id: str, reason: str) -> None:
        self.calls.append((order_id, reason))
        if self.refusal is not None:
            raise self.refusal


class FakeRunner:
    """Keeps the sagas it was asked to start and to wake; ``on_poke`` runs on a wake."""

    def __init__(self) -> None:
        self.started: list[str] = []
        #: The saga state each start was handed (``None``: the run would load it).
        self.states: dict[str, SagaState | None] = {}
        self.poked: list[str] = []
        self.on_poke: Callable[[str], None] | None = None

    def start(self, order_id: str, *, state: SagaState | None = None) -> None:
        self.started.append(order_id)
        self.states[order_id] = state

    def poke(self, order_id: str) -> None:
        self.poked.append(order_id)
        if self.on_poke is not None:
            self.on_poke(order_id)


class OrderShop:
    """Orders ``order-1``, ``order-2``, … at ``now`` (µs, moved by the test)."""

    def __init__(self, *, cancel_wait: float = 0.0) -> None:
        self.now = NOW
        self.notifier = Notifier()
        self.uow = FakeOrderUnitOfWork(on_commit=self.notifier.notify)
        self.catalog = FakeCatalog(TEA, MUG, OLD)
        self.fulfillment = FakeFulfillment()
        self.runner = FakeRunner()
        self.queries = OrderQueries(self.uow, self.notifier, recheck=60.0)
        ids = (f"order-{n}" for n in itertools.count(1))
        self.commands = OrderCommands(
            self.uow,
            self.catalog,
            self.fulfillment,
            cast(SagaRunner, self.runner),
            self.queries,
            LEASE,
            clock=self.clock,
            new_id=lambda: next(ids),
            cancel_wait=cancel_wait,
        )
        self.store = SqlSagaStore(self.uow, self.clock, LEASE)
        self.recorder = ShipmentRecorder(self.clock)

    def clock(self) -> int:
        return self.now

    async def place(self, command: PlaceOrder | None = None) -> OrderView:
        return await self.commands.place(auth.current_caller(), command or order_command())

    async def cancel(self, order_id: str, reason: str = "") -> OrderView:
        return await self.commands.cancel(auth.current_caller(), order_id, reason)

    async def get(self, order_id: str) -> OrderView:
        return await self.queries.get(auth.current_caller(), order_id)

    async def list(self, page_size: int, token: str = "") -> tuple[list[OrderView], str]:
        return await self.queries.list_orders(auth.current_caller(), page_size, token)

    def watch(self, order_id: str, timeout: float | None = None) -> AsyncGenerator[Change, None]:
        changes = self.queries.watch(auth.current_caller(), order_id, timeout=timeout)
        return cast(AsyncGenerator[Change, None], changes)

    async def end_saga(self, order_id: str, outcome: Outcome, reason: str = "") -> None:
        """The saga of ``order_id`` ends with ``outcome`` (payment ``pay-1``)."""
        state = await self.store.load(order_id)
        assert state is not None, f"no saga of {order_id} runs here"
        done = replace(state, payment_id="pay-1", authorized=True, outcome=outcome, reason=reason)
        if outcome is Outcome.CONFIRMED:
            done = replace(done, step=Step.COMPLETE, captured=True)
        await self.store.finish(done)

    async def deliver(self, envelope: Envelope) -> None:
        """A ShipmentDispatched as the consumer hands it over: in a write of its own."""
        async with self.uow.write() as tx:
            await self.recorder(tx, envelope)


@contextmanager
def open_shop(caller: auth.Caller = ALICE, *, cancel_wait: float = 0.0) -> Iterator[OrderShop]:
    """A shop acting for ``caller`` (the RPC's caller, as the auth interceptor sets it)."""
    auth.set_caller(caller)
    try:
        yield OrderShop(cancel_wait=cancel_wait)
    finally:
        auth.set_caller(None)
