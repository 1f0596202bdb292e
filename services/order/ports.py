"""What the order needs from other services, in its own words.

The saga and the handlers depend on these protocols only; :mod:`services.order.downstream`
implements the other services over gRPC, :mod:`services.order.saga_store` the saga's own
persistence and leases, and the unit tests fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from services.order.domain import Card, Event, Money, Order, Product
from services.platform.db import Row
from services.platform.uow import Tx, UnitOfWork

if TYPE_CHECKING:
    from services.order.projector import OrderView
    from services.order.saga import SagaState
    from services.order.saga_rows import Held

#: A SKU and a quantity to reserve.
SkuLine = tuple[str, int]
#: Called once a transaction that appended ``event`` as ``version`` of an order's stream
#: (its id first) has committed: the watchers' notifier.
OnCommit = Callable[[str, int, Event], None]


class StepFailed(Exception):
    """A call to another service failed.

    ``transient`` failures (unavailable, deadline exceeded, overloaded) may succeed when
    retried; the others will not. ``code`` is the gRPC status name. ``retry_after`` is set
    when the call was refused by an open circuit breaker: the seconds until its probe.
    """

    def __init__(
        self, message: str, *, transient: bool, code: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code
        self.retry_after = retry_after

    @property
    def precondition_failed(self) -> bool:
        return self.code == "FAILED_PRECONDITION"


class LeaseLost(Exception):
    """This instance no longer holds the saga (its lease expired and another instance
    adopted it, or the saga ended elsewhere): the run stops without writing anything."""


@dataclass(frozen=True, slots=True)
class Reservation:
    reserved: bool
    unavailable_skus: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Authorization:
    payment_id: str
    approved: bool
    decline_reason: str = ""


class Inventory(Protocol):
    async def reserve(self, order_id: str, lines: Sequence[SkuLine]) -> Reservation: ...

    async def release(self, order_id: str, reason: str) -> None: ...

    async def commit(self, order_id: str) -> None: ...


class Payments(Protocol):
    async def authorize(
        self, idempotency_key: str, order_id: str, amount: Money, card: Card
    ) -> Authorization: ...

    async def capture(self, payment_id: str) -> None: ...

    async def void(self, payment_id: str, reason: str) -> None: ...

    async def refund(self, payment_id: str, reason: str, idempotency_key: str) -> None: ...


class ShipmentDispatched(Exception):
    """Fulfillment refused to cancel: the order's shipment was dispatched already."""


class Fulfillment(Protocol):
    async def cancel_shipment(self, order_id: str, reason: str) -> None:
        """Makes sure the order is never dispatched. Raises :class:`ShipmentDispatched`
        when it was already, and ``Unavailable`` when fulfillment cannot say."""
        ...


class Catalog(Protocol):
    async def products(self, product_ids: Sequence[str]) -> Mapping[str, Product]:
        """The known products among ``product_ids`` (unknown ids are simply absent)."""
        ...


# --- the saga's own persistence -----------------------------------------------------------


class SagaStore(Protocol):
    async def load(self, order_id: str) -> SagaState | None:
        """The saga of ``order_id`` unless it is unknown or has ended."""
        ...

    async def save(self, state: SagaState) -> SagaState:
        """Persists the saga's own fields if ``state.version`` is still the stored one
        (else raises :class:`~services.order.ports.LeaseLost`); returns the state with its
        new version and the current cancel request."""
        ...

    async def finish(self, state: SagaState) -> None:
        """Ends the order with ``state.outcome`` and ``state.reason`` and ends the saga (card
        wiped), in one transaction, compare-and-set on the version like :meth:`save`.
        Raises :class:`CancelRequested` instead of confirming an order whose cancellation
        was requested."""
        ...


class Leases(Protocol):
    async def renew(self, order_ids: Collection[str]) -> set[str]: ...

    async def adopt(self, limit: int) -> list[str]: ...

    async def release(self, order_ids: Collection[str]) -> None: ...


# --- the order's own tables, in one transaction (services.order.repository) --------------


class DuplicateRequest(Exception):
    """Another PlaceOrder with the same (user, idempotency key) committed first."""


class OrderEvents(Protocol):
    async def load(self, order_id: str) -> Order: ...

    async def events_after(self, order_id: str, version: int) -> list[tuple[int, Event]]: ...

    async def append(self, order: Order, new: Event) -> None:
        """Appends ``new`` (the read model and the outbox follow); ``Conflict`` if another
        writer appended that version first."""


class OrderViews(Protocol):
    async def get(self, order_id: str) -> OrderView | None: ...

    async def page(
        self, user_id: str, limit: int, after: tuple[int, str] | None
    ) -> list[OrderView]: ...

    async def versions(self, order_ids: Sequence[str]) -> dict[str, int]: ...


class OrderRequests(Protocol):
    async def find(self, user_id: str, key: str) -> tuple[str, str] | None: ...

    async def add(
        self, user_id: str, key: str, request_hash: str, order_id: str, now_us: int
    ) -> None:
        """Raises :class:`DuplicateRequest` if the key is taken."""


class SagaRows(Protocol):
    async def create(
        self, order_id: str, card: Card, now_us: int, owner: str, expires_us: int
    ) -> None: ...

    async def lock(self, order_id: str) -> Held | None: ...

    async def held_running(self, order_id: str, owner: str) -> Row | None: ...

    async def request_cancel(self, order_id: str, reason: str, now_us: int) -> None: ...

    async def reopen_for_cancel(
        self, order_id: str, reason: str, now_us: int, owner: str, expires_us: int
    ) -> None: ...

    async def save(self, state: SagaState, owner: str, now_us: int) -> tuple[bool, str | None]: ...

    async def end(self, state: SagaState, owner: str, now_us: int) -> tuple[bool, str | None]: ...

    async def renew(self, order_ids: Collection[str], owner: str, expires_us: int) -> set[str]: ...

    async def adopt(self, limit: int, owner: str, now_us: int, expires_us: int) -> list[str]: ...

    async def release(self, order_ids: Collection[str], owner: str) -> None: ...

    async def running(self) -> tuple[int, int | None]: ...


class OrderTx(Tx, Protocol):
    """What one transaction of the order service may touch."""

    @property
    def orders(self) -> OrderEvents: ...

    @property
    def views(self) -> OrderViews: ...

    @property
    def requests(self) -> OrderRequests: ...

    @property
    def sagas(self) -> SagaRows: ...


OrderUnitOfWork = UnitOfWork[OrderTx]
