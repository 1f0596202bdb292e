"""What inventory's handlers need from storage (fakes in tests/support/fakes/inventory.py)."""

from __future__ import annotations

from typing import Protocol

from services.inventory.domain import Line, Reservation, Status, StockLevel
from services.platform.uow import Tx, UnitOfWork


class StockLevels(Protocol):
    """Per-SKU counters; every change keeps each counter at or above zero."""

    async def get(self, sku: str) -> StockLevel | None: ...

    async def take_all(self, lines: tuple[Line, ...], now_us: int) -> tuple[str, ...]:
        """Moves every line's units from available to reserved, or none of them; returns
        the SKUs that lacked stock (in request order)."""

    async def put_back(self, lines: tuple[Line, ...], now_us: int) -> None:
        """Reserved → available."""

    async def sell(self, lines: tuple[Line, ...], now_us: int) -> None:
        """Reserved → sold."""

    async def restock(self, lines: tuple[Line, ...], now_us: int) -> None:
        """Sold → available (an order cancelled before it shipped)."""

    async def add_available(self, sku: str, delta: int, now_us: int) -> bool:
        """Adds ``delta`` to an existing SKU unless that goes below zero; False otherwise."""

    async def create(self, sku: str, available: int, now_us: int) -> bool:
        """Creates a SKU's level; False when it exists (a concurrent call created it)."""


class Reservations(Protocol):
    """One reservation per order, with its lines."""

    async def claim(self, reservation: Reservation) -> bool:
        """Inserts the order's reservation; False when the order already has one."""

    async def add_lines(self, reservation: Reservation) -> None: ...

    async def fail(self, reservation: Reservation) -> None:
        """Marks a just-claimed reservation, its lines added, FAILED (it holds nothing, so
        never expires), and the lines it could not hold as unavailable."""

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
        """``source`` → ``target`` (and unexpired at / expired by a time); False if not."""

    async def get(self, order_id: str) -> Reservation | None: ...

    async def due(self, now_us: int, limit: int) -> list[str]:
        """Orders whose RESERVED reservation expired by ``now_us``, oldest first."""


class InventoryTx(Tx, Protocol):
    @property
    def stock(self) -> StockLevels: ...

    @property
    def reservations(self) -> Reservations: ...


InventoryUnitOfWork = UnitOfWork[InventoryTx]
