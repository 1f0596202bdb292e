"""A fake unit of work for inventory's handlers: the same rules as the SQL, in dicts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from services.inventory.domain import Line, Reservation, Status, StockLevel
from tests.support.fakes import FakeOutbox, FakeRepository, FakeTx, FakeUnitOfWork


@dataclass
class InventoryState:
    stock: dict[str, StockLevel] = field(default_factory=dict)
    reservations: dict[str, Reservation] = field(default_factory=dict)


class FakeStockLevels(FakeRepository[InventoryState]):
    async def get(self, sku: str) -> StockLevel | None:
        return self._state.stock.get(sku)

    def _move(self, line: Line, now_us: int, **deltas: int) -> None:
        level = self._state.stock[line.sku]
        changes = {name: getattr(level, name) + d * line.quantity for name, d in deltas.items()}
        assert all(value >= 0 for value in changes.values()), "a counter went negative"
        self._state.stock[line.sku] = dataclasses.replace(level, **changes, updated_at_us=now_us)

    async def take_all(self, lines: tuple[Line, ...], now_us: int) -> tuple[str, ...]:
        short = tuple(
            line.sku
            for line in lines
            if line.sku not in self._state.stock
            or self._state.stock[line.sku].available < line.quantity
        )
        if not short:
            for line in lines:
                self._move(line, now_us, available=-1, reserved=1)
        return short

    async def put_back(self, lines: tuple[Line, ...], now_us: int) -> None:
        for line in lines:
            self._move(line, now_us, available=1, reserved=-1)

    async def sell(self, lines: tuple[Line, ...], now_us: int) -> None:
        for line in lines:
            self._move(line, now_us, reserved=-1, sold=1)

    async def restock(self, lines: tuple[Line, ...], now_us: int) -> None:
        for line in lines:
            self._move(line, now_us, available=1, sold=-1)

    async def add_available(self, sku: str, delta: int, now_us: int) -> bool:
        level = self._state.stock.get(sku)
        if level is None or level.available + delta < 0:
            return False
        self._state.stock[sku] = dataclasses.replace(
            level, available=level.available + delta, updated_at_us=now_us
        )
        return True

    async def create(self, sku: str, available: int, now_us: int) -> bool:
        if sku in self._state.stock:
            return False
        self._state.stock[sku] = StockLevel(sku, available, 0, 0, now_us)
        return True


class FakeReservations(FakeRepository[InventoryState]):
    async def claim(self, reservation: Reservation) -> bool:
        if reservation.order_id in self._state.reservations:
            return False
        self._state.reservations[reservation.order_id] = dataclasses.replace(
            reservation, lines=(), unavailable_skus=()
        )
        return True

    async def add_lines(self, reservation: Reservation) -> None:
        stored = self._state.reservations[reservation.order_id]
        self._state.reservations[reservation.order_id] = dataclasses.replace(
            stored, lines=reservation.lines, unavailable_skus=reservation.unavailable_skus
        )

    async def fail(self, reservation: Reservation) -> None:
        stored = self._state.reservations[reservation.order_id]
        self._state.reservations[reservation.order_id] = dataclasses.replace(
            stored,
            status=Status.FAILED,
            unavailable_skus=reservation.unavailable_skus,
            expires_at_us=None,
            updated_at_us=reservation.updated_at_us,
        )

    async def transition(
        self,
        order_id: str,
        source: Status,
        target: Status,
        now_us: int,
        *,
        alive_at_us: int | None = None,
        expired_by_us: int | None = None,
    ) -> bool:
        stored = self._state.reservations.get(order_id)
        if stored is None or stored.status is not source:
            return False
        expires = stored.expires_at_us
        if alive_at_us is not None and (expires is None or expires <= alive_at_us):
            return False
        if expired_by_us is not None and (expires is None or expires > expired_by_us):
            return False
        self._state.reservations[order_id] = dataclasses.replace(
            stored, status=target, updated_at_us=now_us
        )
        return True

    async def get(self, order_id: str) -> Reservation | None:
        return self._state.reservations.get(order_id)

    async def due(self, now_us: int, limit: int) -> list[str]:
        due = [
            r
            for r in self._state.reservations.values()
            if r.status is Status.RESERVED
            and r.expires_at_us is not None
            and r.expires_at_us <= now_us
        ]
        return [r.order_id for r in sorted(due, key=lambda r: r.expires_at_us or 0)][:limit]


class FakeInventoryTx(FakeTx):
    def __init__(self, state: InventoryState, outbox: FakeOutbox) -> None:
        super().__init__(outbox)
        self.stock = FakeStockLevels(state)
        self.reservations = FakeReservations(state)


def fake_inventory_uow() -> FakeUnitOfWork[InventoryState, FakeInventoryTx]:
    return FakeUnitOfWork(InventoryState(), FakeInventoryTx)
