"""The unit of work: a transaction seen as one service's repositories.

Each service declares what its handlers may touch (``tx.users``, …; every one has
``tx.outbox``) as a :class:`Tx` protocol in its ``ports.py`` and builds it, a
:class:`SqlTx` of :class:`SqlRepository` objects on a
:class:`~services.platform.db.Transaction`, in ``repository.py``::

    class SqlCatalogTx(SqlTx):
        stream = "catalog"
        products: SqlProducts

    uow = SqlUnitOfWork(db, SqlCatalogTx)

Handlers depend on the protocol only, so unit tests hand them a fake::

    async with uow.write() as tx:
        await tx.products.add(product)
        await tx.outbox.record(event, product.product_id)

An event's effect on the same repositories becomes a bus handler (it runs in the
consumer's transaction, with the inbox row) through :meth:`SqlUnitOfWork.event_handler`::

    consuming(..., handlers={ORDER_CONFIRMED: uow.event_handler(handle_order_confirmed)})
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar, get_type_hints

from services.platform.db import Database, InsertNew, Params, Transaction
from services.platform.outbox import SqlOutbox

if TYPE_CHECKING:
    from services.platform.outbox import Envelope, Outbox

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class UnitOfWork(Protocol[T_co]):
    """Transactions over a service's repositories (``T_co``): read-write or read-only."""

    def write(self) -> AbstractAsyncContextManager[T_co]:
        """Commits when the block ends; rolls back (and publishes nothing) on error."""

    def read(self) -> AbstractAsyncContextManager[T_co]:
        """A consistent read; writing in it is an error."""

    def write_one(self) -> AbstractAsyncContextManager[T_co]:
        """A write of one statement (:meth:`~services.platform.db.Database.write_one`)."""


class Tx(Protocol):
    """One transaction of a unit of work: a service's ``<Name>Tx`` adds its repositories."""

    @property
    def outbox(self) -> Outbox: ...


class SqlRepository:
    """The base of a service's SQL repositories: statements run in ``self._tx``."""

    __slots__ = ("_tx",)

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def _insert_new(self, statement: InsertNew, row: Params) -> bool:
        """Inserts ``row`` with ``statement`` (an :func:`~services.platform.db.insert_new`);
        False when its key exists. On PostgreSQL a concurrent insert of the same key waits
        here for the first one's transaction and then loses."""
        return await self._tx.execute(statement, row) == 1


class SqlTx:
    """A service's repositories in one transaction: the outbox of the subclass's
    ``stream``, and a ``Repository(tx)`` for each attribute it declares as
    ``name: Repository`` (a :class:`SqlRepository`). A repository built otherwise is set
    in the subclass's ``__init__``, after this one's."""

    __slots__ = ("outbox",)
    stream: ClassVar[str]

    def __init__(self, tx: Transaction) -> None:
        self.outbox = SqlOutbox(tx, self.stream)
        for name, repository in _declared_repositories(type(self)):
            setattr(self, name, repository(tx))


_Declared = tuple[tuple[str, type[SqlRepository]], ...]
_declared: dict[type[SqlTx], _Declared] = {}


def _declared_repositories(cls: type[SqlTx]) -> _Declared:
    """The ``name: Repository`` attributes of ``cls`` (read once per class)."""
    found = _declared.get(cls)
    if found is None:
        found = _declared[cls] = tuple(
            (name, hint)
            for name, hint in get_type_hints(cls).items()
            if isinstance(hint, type) and issubclass(hint, SqlRepository)
        )
    return found


class SqlUnitOfWork(Generic[T]):
    """A :class:`UnitOfWork` on ``db``: ``repositories(tx)`` wraps each transaction."""

    def __init__(self, db: Database, repositories: Callable[[Transaction], T]) -> None:
        self.db = db
        self._repositories = repositories

    def write(self) -> _Scope[T]:
        return _Scope(self.db.write(), self._repositories)

    def read(self) -> _Scope[T]:
        return _Scope(self.db.read(), self._repositories)

    def write_one(self) -> _Scope[T]:
        return _Scope(self.db.write_one(), self._repositories)

    def event_handler(
        self, effect: Callable[[T, Envelope], Awaitable[None]]
    ) -> Callable[[Transaction, Envelope], Awaitable[None]]:
        """``effect`` on the repositories of the consumer's transaction: a handler for
        ``consuming(..., handlers={...})``."""
        repositories = self._repositories

        async def handle(tx: Transaction, envelope: Envelope) -> None:
            await effect(repositories(tx), envelope)

        return handle


class _Scope(Generic[T]):
    __slots__ = ("_inner", "_repositories")

    def __init__(
        self,
        inner: AbstractAsyncContextManager[Transaction],
        repositories: Callable[[Transaction], T],
    ) -> None:
        self._inner = inner
        self._repositories = repositories

    async def __aenter__(self) -> T:
        return self._repositories(await self._inner.__aenter__())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return await self._inner.__aexit__(exc_type, exc, traceback)
