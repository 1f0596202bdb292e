"""Inventory's domain: stock levels, reservations and the commands on them.

Standard library only. The rules that need no database live here: what a valid request
is, how long a reservation lives, and which state a reservation may move to.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from services.platform.errors import Validator
from services.platform.validation import Text, Validated

MAX_ORDER_ID, MAX_SKU, MAX_REASON = 64, 64, 200
MAX_LINES, MAX_QUANTITY = 100, 1000
DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS = 900, 86_400
#: Bounds one adjustment so stock counters stay far from the 64-bit limit.
MAX_ADJUSTMENT = 1_000_000_000
RELEASED_REASON, EXPIRED_REASON = "released", "expired"

OrderId = Annotated[str, Text(MAX_ORDER_ID)]
Sku = Annotated[str, Text(MAX_SKU)]


class Status(StrEnum):
    """Lifecycle of a reservation: RESERVED, then RELEASED, EXPIRED or COMMITTED.

    FAILED is final from the start: nothing was held.
    """

    RESERVED = "RESERVED"
    FAILED = "FAILED"
    RELEASED = "RELEASED"
    COMMITTED = "COMMITTED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True, slots=True)
class Line:
    """One SKU and the units of it an order needs."""

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class StockLevel:
    """Units of one SKU: free to reserve, held by live reservations, and sold."""

    sku: str
    available: int
    reserved: int
    sold: int
    updated_at_us: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """Stock held for one order (or, when FAILED, the record that none could be)."""

    reservation_id: str
    order_id: str
    status: Status
    lines: tuple[Line, ...]
    unavailable_skus: tuple[str, ...]
    expires_at_us: int | None
    created_at_us: int
    updated_at_us: int

    def requested(self, lines: tuple[Line, ...]) -> bool:
        """Whether ``lines`` are what this reservation was made for (in any order)."""
        return _by_sku(self.lines) == _by_sku(lines)


def _by_sku(lines: tuple[Line, ...]) -> dict[str, int]:
    return {line.sku: line.quantity for line in lines}


def _sku(v: Validator, sku: str, field: str) -> None:
    v.text(sku, field, max_len=MAX_SKU)


@dataclass(frozen=True, slots=True)
class ReserveStock(Validated):
    """Command: hold every line's units for an order, all or nothing."""

    order_id: OrderId
    lines: tuple[Line, ...]
    ttl_seconds: int = 0

    def check(self, v: Validator) -> None:
        if v.check(len(self.lines) > 0, "lines", "must not be empty"):
            v.check(len(self.lines) <= MAX_LINES, "lines", f"must have at most {MAX_LINES} entries")
        seen: set[str] = set()
        for index, line in enumerate(self.lines[:MAX_LINES]):
            field = f"lines[{index}]"
            _sku(v, line.sku, f"{field}.sku")
            if line.sku and line.sku in seen:
                v.check(False, f"{field}.sku", "must not repeat an earlier line's SKU")
            seen.add(line.sku)
            v.positive(line.quantity, f"{field}.quantity", maximum=MAX_QUANTITY)
        v.check(
            0 <= self.ttl_seconds <= MAX_TTL_SECONDS,
            "ttl_seconds",
            f"must be between 0 (the default, {DEFAULT_TTL_SECONDS}) and {MAX_TTL_SECONDS}",
        )

    @property
    def ttl_us(self) -> int:
        """The reservation's lifetime in microseconds (0 means the default)."""
        return (self.ttl_seconds or DEFAULT_TTL_SECONDS) * 1_000_000


@dataclass(frozen=True, slots=True)
class ReleaseReservation(Validated):
    """Command: give an order's held units back to the available stock."""

    order_id: OrderId
    reason: Annotated[str, Text(MAX_REASON, required=False)] = ""


@dataclass(frozen=True, slots=True)
class CommitReservation(Validated):
    """Command: turn an order's held units into sold units."""

    order_id: OrderId


@dataclass(frozen=True, slots=True)
class AdjustStock:
    """Command (admin): add units to, or remove units from, a SKU's available stock."""

    sku: str
    delta: int
    reason: str

    def validate(self) -> None:
        v = Validator()
        _sku(v, self.sku, "sku")
        v.check(self.delta != 0, "delta", "must not be zero")
        v.check(
            abs(self.delta) <= MAX_ADJUSTMENT,
            "delta",
            f"must be between -{MAX_ADJUSTMENT} and {MAX_ADJUSTMENT}",
        )
        v.text(self.reason, "reason", max_len=MAX_REASON)
        v.raise_if_any()


@dataclass(frozen=True, slots=True)
class GetStock(Validated):
    """Query: one SKU's stock level."""

    sku: Sku
