"""InventoryService over real gRPC, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from emporium.inventory.v1 import events_pb2 as events
from emporium.inventory.v1 import inventory_service_pb2 as pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as pb_grpc
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import create_async_engine

from services.identity.tokens import SigningKey
from services.inventory import main as inventory_main
from services.inventory.domain import (
    AdjustStock,
    CommitReservation,
    GetStock,
    Line,
    ReleaseReservation,
    ReserveStock,
    Status,
)
from services.inventory.handlers import Inventory as Handlers
from services.inventory.repository import SqlInventoryTx
from services.platform import auth
from services.platform.db import Database
from services.platform.errors import FailedPrecondition
from services.platform.status import field_violations
from services.platform.uow import SqlUnitOfWork
from tests.conftest import Tokens
from tests.support import servers
from tests.support.databases import fresh_database
from tests.support.tokens import bad_tokens, bearer

Metadata = tuple[tuple[str, str], ...]

RESERVED = pb.RESERVATION_STATUS_RESERVED
FAILED = pb.RESERVATION_STATUS_FAILED
RELEASED = pb.RESERVATION_STATUS_RELEASED
COMMITTED = pb.RESERVATION_STATUS_COMMITTED
EXPIRED = pb.RESERVATION_STATUS_EXPIRED

_EVENT_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        events.StockReserved,
        events.StockReservationFailed,
        events.StockReleased,
        events.StockCommitted,
        events.StockAdjusted,
    )
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def lines(**quantities: int) -> list[pb.ReservationLine]:
    return [pb.ReservationLine(sku=sku, quantity=q) for sku, q in quantities.items()]


@dataclass
class Inventory:
    """A running inventory service, its database URL and the callers tests need."""

    stub: pb_grpc.InventoryServiceStub
    url: str
    order: Metadata
    admin: Metadata

    async def restock(self, sku: str, units: int) -> pb.StockLevel:
        request = pb.AdjustStockRequest(sku=sku, delta=units, reason="restock")
        return (await self.stub.AdjustStock(request, metadata=self.admin)).stock

    async def reserve(
        self, order_id: str, reserved: Sequence[pb.ReservationLine], ttl_seconds: int = 0
    ) -> pb.Reservation:
        request = pb.ReserveStockRequest(order_id=order_id, lines=reserved, ttl_seconds=ttl_seconds)
        return (await self.stub.ReserveStock(request, metadata=self.order)).reservation

    async def release(self, order_id: str, reason: str = "") -> pb.ReleaseReservationResponse:
        request = pb.ReleaseReservationRequest(order_id=order_id, reason=reason)
        return await self.stub.ReleaseReservation(request, metadata=self.order)

    async def commit(self, order_id: str) -> pb.Reservation:
        request = pb.CommitReservationRequest(order_id=order_id)
        return (await self.stub.CommitReservation(request, metadata=self.order)).reservation

    async def stock(self, sku: str) -> tuple[int, int, int]:
        """(available, reserved, sold) of ``sku``."""
        level = (await self.stub.GetStock(pb.GetStockRequest(sku=sku))).stock
        return level.available, level.reserved, level.sold

    async def events(self, aggregate_id: str) -> list[Message]:
        """The events recorded in the outbox for ``aggregate_id``, oldest first."""
        engine = create_async_engine(self.url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.text(
                        "SELECT event_type, payload FROM outbox"
                        " WHERE aggregate_id = :aggregate ORDER BY id"
                    ),
                    {"aggregate": aggregate_id},
                )
                return [_EVENT_TYPES[kind].FromString(payload) for kind, payload in rows]
        finally:
            await engine.dispose()


@asynccontextmanager
async def serve_inventory(
    backend: str, tmp: Path, identity_target: str, tokens: Tokens, **env: str
) -> AsyncIterator[Inventory]:
    """An inventory service on a fresh database that trusts ``identity_target``'s keys."""
    async with fresh_database(backend, tmp, "inventory") as url:
        settings = servers.settings_for(
            "inventory",
            url,
            IDENTITY_TARGET=identity_target,
            EMPORIUM_INVENTORY_SWEEP_INTERVAL_SECONDS="0.05",
            **env,
        )
        async with servers.serve(inventory_main.build, settings) as running:
            yield Inventory(
                stub=pb_grpc.InventoryServiceStub(running.channel),
                url=url,
                order=bearer(tokens.service("order")),
                admin=bearer(tokens.admin),
            )


@pytest.fixture
async def inventory(
    backend: str, tmp: Path, identity_server: servers.Running, tokens: Tokens
) -> AsyncIterator[Inventory]:
    async with serve_inventory(backend, tmp, identity_server.target, tokens) as running:
        yield running


async def _code_of(call: object) -> grpc.StatusCode:
    """The status code a call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as caught:
        await call  # type: ignore[misc]
    code: grpc.StatusCode = caught.value.code()
    return code


async def _violations_of(call: object) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return field_violations(caught.value)


# -- GetStock and AdjustStock ---------------------------------------------------------------


async def test_adjust_stock_creates_a_sku_that_anyone_can_read(inventory: Inventory) -> None:
    sku = unique("mug")
    created = await inventory.restock(sku, 12)
    assert (created.sku, created.available, created.reserved, created.sold) == (sku, 12, 0, 0)
    got = (await inventory.stub.GetStock(pb.GetStockRequest(sku=sku))).stock
    assert (got.available, got.reserved, got.sold) == (12, 0, 0)
    assert got.update_time.ToMicroseconds() == created.update_time.ToMicroseconds() > 0


async def test_adjust_stock_adds_and_removes_units_and_publishes_stock_adjusted(
    inventory: Inventory,
) -> None:
    sku = unique("lamp")
    await inventory.restock(sku, 5)
    request = pb.AdjustStockRequest(sku=sku, delta=-3, reason="damaged")
    after = (await inventory.stub.AdjustStock(request, metadata=inventory.admin)).stock
    assert after.available == 2
    published = await inventory.events(sku)
    assert [(e.delta, e.reason, e.available) for e in published] == [  # type: ignore[attr-defined]
        (5, "restock", 5),
        (-3, "damaged", 2),
    ]


async def test_adjust_stock_never_takes_available_below_zero(inventory: Inventory) -> None:
    sku = unique("vase")
    await inventory.restock(sku, 2)
    request = pb.AdjustStockRequest(sku=sku, delta=-3, reason="stocktake")
    code = await _code_of(inventory.stub.AdjustStock(request, metadata=inventory.admin))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert await inventory.stock(sku) == (2, 0, 0)


async def test_adjust_stock_cannot_remove_units_of_an_unknown_sku(inventory: Inventory) -> None:
    request = pb.AdjustStockRequest(sku=unique("ghost"), delta=-1, reason="stocktake")
    code = await _code_of(inventory.stub.AdjustStock(request, metadata=inventory.admin))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_adjust_stock_rejects_bad_input_naming_the_field(inventory: Inventory) -> None:
    cases = [
        (pb.AdjustStockRequest(sku="", delta=1, reason="restock"), "sku"),
        (pb.AdjustStockRequest(sku="s" * 65, delta=1, reason="restock"), "sku"),
        (pb.AdjustStockRequest(sku="ok", delta=0, reason="restock"), "delta"),
        (pb.AdjustStockRequest(sku="ok", delta=10**12, reason="restock"), "delta"),
        (pb.AdjustStockRequest(sku="ok", delta=1, reason=""), "reason"),
        (pb.AdjustStockRequest(sku="ok", delta=1, reason="r" * 201), "reason"),
    ]
    for request, field in cases:
        found = await _violations_of(inventory.stub.AdjustStock(request, metadata=inventory.admin))
        assert field in found, (request, found)
    assert await _code_of(inventory.stub.GetStock(pb.GetStockRequest(sku="ok"))) == (
        grpc.StatusCode.NOT_FOUND
    )


async def test_get_stock_of_an_unknown_sku_is_not_found(inventory: Inventory) -> None:
    code = await _code_of(inventory.stub.GetStock(pb.GetStockRequest(sku=unique("nothing"))))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_get_stock_rejects_an_empty_or_oversized_sku(inventory: Inventory) -> None:
    for sku in ("", "s" * 65):
        found = await _violations_of(inventory.stub.GetStock(pb.GetStockRequest(sku=sku)))
        assert "sku" in found


async def test_get_stock_stays_public_when_the_token_is_bad(
    inventory: Inventory, signing_key: SigningKey
) -> None:
    sku = unique("pen")
    await inventory.restock(sku, 1)
    token = bad_tokens(signing_key, "user-1")["garbage"]
    got = await inventory.stub.GetStock(pb.GetStockRequest(sku=sku), metadata=bearer(token))
    assert got.stock.available == 1


# -- ReserveStock -----------------------------------------------------------------------------


async def test_reserve_stock_holds_every_line_and_publishes_stock_reserved(
    inventory: Inventory,
) -> None:
    cup, saucer, order_id = unique("cup"), unique("saucer"), unique("order")
    await inventory.restock(cup, 5)
    await inventory.restock(saucer, 5)
    before = time.time()
    reservation = await inventory.reserve(order_id, lines(**{cup: 2, saucer: 5}), ttl_seconds=60)
    assert reservation.status == RESERVED
    assert reservation.order_id == order_id
    assert reservation.reservation_id
    assert [(line.sku, line.quantity) for line in reservation.lines] == [(cup, 2), (saucer, 5)]
    assert list(reservation.unavailable_skus) == []
    expires_in = reservation.expire_time.ToMicroseconds() / 1e6 - before
    assert 59 <= expires_in <= 62
    assert await inventory.stock(cup) == (3, 2, 0)
    assert await inventory.stock(saucer) == (0, 5, 0)
    [event] = await inventory.events(order_id)
    assert isinstance(event, events.StockReserved)
    assert event.reservation_id == reservation.reservation_id
    assert [(line.sku, line.quantity) for line in event.lines] == [(cup, 2), (saucer, 5)]


async def test_reserve_stock_defaults_the_ttl_to_fifteen_minutes(inventory: Inventory) -> None:
    sku = unique("hat")
    await inventory.restock(sku, 1)
    reservation = await inventory.reserve(unique("order"), lines(**{sku: 1}))
    lifetime = reservation.expire_time.ToMicroseconds() - reservation.create_time.ToMicroseconds()
    assert lifetime == 900 * 1_000_000


async def test_reserve_stock_is_all_or_nothing_when_one_line_is_short(
    inventory: Inventory,
) -> None:
    plenty, scarce, unknown = unique("plenty"), unique("scarce"), unique("unknown")
    await inventory.restock(plenty, 10)
    await inventory.restock(scarce, 1)
    order_id = unique("order")
    reservation = await inventory.reserve(order_id, lines(**{plenty: 3, scarce: 2, unknown: 1}))
    assert reservation.status == FAILED
    assert list(reservation.unavailable_skus) == [scarce, unknown]
    assert not reservation.HasField("expire_time")
    assert await inventory.stock(plenty) == (10, 0, 0)
    assert await inventory.stock(scarce) == (1, 0, 0)
    [event] = await inventory.events(order_id)
    assert isinstance(event, events.StockReservationFailed)
    assert list(event.unavailable_skus) == [scarce, unknown]
    assert scarce in event.reason


async def test_reserve_stock_replayed_for_the_same_order_changes_nothing(
    inventory: Inventory,
) -> None:
    sku, order_id = unique("book"), unique("order")
    await inventory.restock(sku, 4)
    first = await inventory.reserve(order_id, lines(**{sku: 3}))
    again = await inventory.reserve(order_id, lines(**{sku: 3}), ttl_seconds=5)
    assert again == first
    assert await inventory.stock(sku) == (1, 3, 0)
    assert len(await inventory.events(order_id)) == 1


async def test_a_failed_reservation_stays_failed_when_replayed_after_a_restock(
    inventory: Inventory,
) -> None:
    sku, order_id = unique("rare"), unique("order")
    failed = await inventory.reserve(order_id, lines(**{sku: 2}))
    await inventory.restock(sku, 5)
    again = await inventory.reserve(order_id, lines(**{sku: 2}))
    assert again == failed
    assert again.status == FAILED
    assert await inventory.stock(sku) == (5, 0, 0)


async def test_reserve_stock_replayed_with_other_lines_is_a_failed_precondition(
    inventory: Inventory,
) -> None:
    sku, order_id = unique("sock"), unique("order")
    await inventory.restock(sku, 10)
    await inventory.reserve(order_id, lines(**{sku: 1}))
    request = pb.ReserveStockRequest(order_id=order_id, lines=lines(**{sku: 2}))
    code = await _code_of(inventory.stub.ReserveStock(request, metadata=inventory.order))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert await inventory.stock(sku) == (9, 1, 0)


async def test_reserve_stock_rejects_bad_input_naming_the_field(inventory: Inventory) -> None:
    good = lines(a=1)
    many = [pb.ReservationLine(sku=f"sku-{i}", quantity=1) for i in range(101)]
    twice = [pb.ReservationLine(sku="a", quantity=1), pb.ReservationLine(sku="a", quantity=2)]
    cases = [
        (pb.ReserveStockRequest(order_id="", lines=good), "order_id"),
        (pb.ReserveStockRequest(order_id="o" * 65, lines=good), "order_id"),
        (pb.ReserveStockRequest(order_id="o"), "lines"),
        (pb.ReserveStockRequest(order_id="o", lines=many), "lines"),
        (pb.ReserveStockRequest(order_id="o", lines=lines(**{"": 1})), "lines[0].sku"),
        (pb.ReserveStockRequest(order_id="o", lines=lines(**{"s" * 65: 1})), "lines[0].sku"),
        (pb.ReserveStockRequest(order_id="o", lines=lines(a=0)), "lines[0].quantity"),
        (pb.ReserveStockRequest(order_id="o", lines=lines(a=-1)), "lines[0].quantity"),
        (pb.ReserveStockRequest(order_id="o", lines=lines(a=1001)), "lines[0].quantity"),
        (pb.ReserveStockRequest(order_id="o", lines=twice), "lines[1].sku"),
        (pb.ReserveStockRequest(order_id="o", lines=good, ttl_seconds=-1), "ttl_seconds"),
        (pb.ReserveStockRequest(order_id="o", lines=good, ttl_seconds=86_401), "ttl_seconds"),
    ]
    for request, field in cases:
        found = await _violations_of(inventory.stub.ReserveStock(request, metadata=inventory.order))
        assert field in found, (field, found)
    # None of the refused requests claimed order "o".
    await inventory.restock("a", 1)
    assert (await inventory.reserve("o", lines(a=1))).status == RESERVED


# -- ReleaseReservation -----------------------------------------------------------------------


async def test_release_returns_the_stock_and_publishes_stock_released(
    inventory: Inventory,
) -> None:
    sku, order_id = unique("kite"), unique("order")
    await inventory.restock(sku, 3)
    reserved = await inventory.reserve(order_id, lines(**{sku: 2}))
    released = (await inventory.release(order_id, "payment declined")).reservation
    assert released.status == RELEASED
    assert released.reservation_id == reserved.reservation_id
    assert await inventory.stock(sku) == (3, 0, 0)
    _reserved, stock_released = await inventory.events(order_id)
    assert isinstance(stock_released, events.StockReleased)
    assert stock_released.reason == "payment declined"
    assert [(line.sku, line.quantity) for line in stock_released.lines] == [(sku, 2)]


async def test_release_is_a_no_op_for_released_and_failed_reservations(
    inventory: Inventory,
) -> None:
    sku, released_order, failed_order = unique("yoyo"), unique("order"), unique("order")
    await inventory.restock(sku, 2)
    await inventory.reserve(released_order, lines(**{sku: 2}))
    first = (await inventory.release(released_order)).reservation
    again = (await inventory.release(released_order)).reservation
    assert again == first
    failed = await inventory.reserve(failed_order, lines(**{sku: 5}))
    assert (await inventory.release(failed_order)).reservation == failed
    assert await inventory.stock(sku) == (2, 0, 0)
    assert len(await inventory.events(released_order)) == 2  # reserved, released once


async def test_release_for_an_order_without_a_reservation_succeeds_empty(
    inventory: Inventory,
) -> None:
    response = await inventory.release(unique("never-reserved"))
    assert not response.HasField("reservation")


async def test_release_of_a_committed_reservation_restocks_the_sold_units_once(
    inventory: Inventory,
) -> None:
    sku, order_id = unique("drum"), unique("order")
    await inventory.restock(sku, 1)
    await inventory.reserve(order_id, lines(**{sku: 1}))
    await inventory.commit(order_id)
    assert await inventory.stock(sku) == (0, 0, 1)
    request = pb.ReleaseReservationRequest(order_id=order_id, reason="order cancelled")
    for _ in range(2):
        released = await inventory.stub.ReleaseReservation(request, metadata=inventory.order)
        assert released.reservation.status == pb.RESERVATION_STATUS_RELEASED
    assert await inventory.stock(sku) == (1, 0, 0)


async def test_release_and_commit_reject_bad_input_naming_the_field(
    inventory: Inventory,
) -> None:
    release, commit = inventory.stub.ReleaseReservation, inventory.stub.CommitReservation
    release_cases = [
        (pb.ReleaseReservationRequest(), "order_id"),
        (pb.ReleaseReservationRequest(order_id="o" * 65), "order_id"),
        (pb.ReleaseReservationRequest(order_id="o", reason="r" * 201), "reason"),
    ]
    for request, field in release_cases:
        assert field in await _violations_of(release(request, metadata=inventory.order))
    found = await _violations_of(commit(pb.CommitReservationRequest(), metadata=inventory.order))
    assert "order_id" in found


# -- CommitReservation ------------------------------------------------------------------------


async def test_commit_sells_the_reserved_stock_once_however_often_it_is_called(
    inventory: Inventory,
) -> None:
    sku, order_id = unique("bike"), unique("order")
    await inventory.restock(sku, 4)
    await inventory.reserve(order_id, lines(**{sku: 3}))
    committed = await inventory.commit(order_id)
    again = await inventory.commit(order_id)
    assert committed.status == COMMITTED
    assert again == committed
    assert await inventory.stock(sku) == (1, 0, 3)
    kinds = [type(event).__name__ for event in await inventory.events(order_id)]
    assert kinds == ["StockReserved", "StockCommitted"]


async def test_commit_of_a_released_or_failed_reservation_is_a_failed_precondition(
    inventory: Inventory,
) -> None:
    sku, released_order, failed_order = unique("ball"), unique("order"), unique("order")
    await inventory.restock(sku, 1)
    await inventory.reserve(released_order, lines(**{sku: 1}))
    await inventory.release(released_order)
    await inventory.reserve(failed_order, lines(**{sku: 2}))
    for order_id in (released_order, failed_order):
        request = pb.CommitReservationRequest(order_id=order_id)
        code = await _code_of(inventory.stub.CommitReservation(request, metadata=inventory.order))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert await inventory.stock(sku) == (1, 0, 0)


async def test_commit_for_an_order_without_a_reservation_is_not_found(
    inventory: Inventory,
) -> None:
    request = pb.CommitReservationRequest(order_id=unique("never-reserved"))
    code = await _code_of(inventory.stub.CommitReservation(request, metadata=inventory.order))
    assert code == grpc.StatusCode.NOT_FOUND


# -- Expiry -----------------------------------------------------------------------------------


async def test_the_sweeper_returns_the_stock_of_an_expired_reservation(
    inventory: Inventory,
) -> None:
    sku, order_id = unique("ice"), unique("order")
    await inventory.restock(sku, 2)
    await inventory.reserve(order_id, lines(**{sku: 2}), ttl_seconds=1)
    assert await inventory.stock(sku) == (0, 2, 0)
    deadline = time.monotonic() + 5
    while await inventory.stock(sku) != (2, 0, 0):
        assert time.monotonic() < deadline, "the sweeper did not expire the reservation"
        await asyncio.sleep(0.05)
    expired = await inventory.reserve(order_id, lines(**{sku: 2}))
    assert expired.status == EXPIRED
    assert (await inventory.release(order_id)).reservation.status == EXPIRED
    request = pb.CommitReservationRequest(order_id=order_id)
    code = await _code_of(inventory.stub.CommitReservation(request, metadata=inventory.order))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    _reserved, released = await inventory.events(order_id)
    assert isinstance(released, events.StockReleased)
    assert released.reason == "expired"
    assert await inventory.stock(sku) == (2, 0, 0)


@asynccontextmanager
async def _handlers_at(backend: str, tmp: Path, clock: list[int]) -> AsyncIterator[Handlers]:
    """The use cases on a fresh database with a hand-driven clock, called as the order
    service would (no gRPC, no sweeper: expiry happens only when the test says so)."""
    async with fresh_database(backend, tmp, "inventory") as url:
        db = Database(url, inventory_main.MIGRATIONS)
        await db.migrate()
        auth.set_caller(auth.Caller("service:order", "svc-order", frozenset({"service"})))
        try:
            yield Handlers(SqlUnitOfWork(db, SqlInventoryTx), clock=lambda: clock[0])
        finally:
            auth.set_caller(None)
            await db.dispose()


async def _seed(handlers: Handlers, sku: str, units: int) -> None:
    caller = auth.optional_caller()
    auth.set_caller(auth.Caller("admin:admin", "admin", frozenset({"admin"})))
    try:
        await handlers.adjust(AdjustStock(sku, units, "restock"))
    finally:
        auth.set_caller(caller)


async def test_commit_after_the_expiry_fails_even_before_the_sweeper_runs(
    backend: str, tmp: Path
) -> None:
    clock = [1_000_000_000_000]
    async with _handlers_at(backend, tmp, clock) as handlers:
        await _seed(handlers, "tea", 3)
        await handlers.reserve(ReserveStock("late", (Line("tea", 2),), ttl_seconds=10))
        clock[0] += 10 * 1_000_000  # exactly at the expiry: no longer alive
        with pytest.raises(FailedPrecondition):
            await handlers.commit(CommitReservation("late"))
        level = await handlers.get_stock(GetStock("tea"))
        assert (level.available, level.reserved, level.sold) == (3, 0, 0)
        released = await handlers.release(ReleaseReservation("late"))
        assert released is not None
        assert released.status is Status.EXPIRED


async def test_expire_due_expires_only_reservations_past_their_expiry(
    backend: str, tmp: Path
) -> None:
    clock = [1_000_000_000_000]
    async with _handlers_at(backend, tmp, clock) as handlers:
        await _seed(handlers, "jam", 5)
        await handlers.reserve(ReserveStock("short", (Line("jam", 1),), ttl_seconds=5))
        await handlers.reserve(ReserveStock("long", (Line("jam", 2),), ttl_seconds=60))
        assert await handlers.expire_due() == 0
        clock[0] += 5 * 1_000_000
        assert await handlers.expire_due() == 1
        assert await handlers.expire_due() == 0
        level = await handlers.get_stock(GetStock("jam"))
        assert (level.available, level.reserved) == (3, 2)
        committed = await handlers.commit(CommitReservation("long"))
        assert committed.status is Status.COMMITTED


# -- Authentication and authorization ---------------------------------------------------------


def _mutations(inventory: Inventory, metadata: Metadata) -> list[object]:
    """One call of each order-service-only RPC (not yet awaited)."""
    stub, order_id = inventory.stub, unique("order")
    return [
        stub.ReserveStock(
            pb.ReserveStockRequest(order_id=order_id, lines=lines(a=1)), metadata=metadata
        ),
        stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id), metadata=metadata),
        stub.CommitReservation(pb.CommitReservationRequest(order_id=order_id), metadata=metadata),
    ]


async def test_only_the_order_service_may_reserve_release_or_commit(
    inventory: Inventory, tokens: Tokens
) -> None:
    for token in (tokens.user("user-1"), tokens.admin, tokens.service("payment")):
        for call in _mutations(inventory, bearer(token)):
            assert await _code_of(call) == grpc.StatusCode.PERMISSION_DENIED


async def test_only_an_admin_may_adjust_stock(inventory: Inventory, tokens: Tokens) -> None:
    sku = unique("gold")
    request = pb.AdjustStockRequest(sku=sku, delta=5, reason="restock")
    for token in (tokens.user("user-1"), tokens.service("order")):
        call = inventory.stub.AdjustStock(request, metadata=bearer(token))
        assert await _code_of(call) == grpc.StatusCode.PERMISSION_DENIED
    assert await _code_of(inventory.stub.GetStock(pb.GetStockRequest(sku=sku))) == (
        grpc.StatusCode.NOT_FOUND
    )


async def test_calls_without_a_token_are_unauthenticated(inventory: Inventory) -> None:
    adjust = inventory.stub.AdjustStock(pb.AdjustStockRequest(sku="a", delta=1, reason="r"))
    for call in [*_mutations(inventory, ()), adjust]:
        assert await _code_of(call) == grpc.StatusCode.UNAUTHENTICATED


async def test_calls_with_a_bad_token_are_unauthenticated(
    inventory: Inventory, signing_key: SigningKey
) -> None:
    for kind, token in bad_tokens(signing_key, "service:order").items():
        adjust = inventory.stub.AdjustStock(
            pb.AdjustStockRequest(sku="a", delta=1, reason="r"), metadata=bearer(token)
        )
        for call in [*_mutations(inventory, bearer(token)), adjust]:
            assert await _code_of(call) == grpc.StatusCode.UNAUTHENTICATED, kind
