"""How every database backend's ``async with db.write() / db.read() as tx`` block ends.

A backend's scope opens its transaction in ``__aenter__`` and says how to end it
(:meth:`TransactionScope._finish`: COMMIT, or ROLLBACK after an error) and what to give
back afterwards (:meth:`TransactionScope._release`: the write lock, the connection). What
leaving the block means is the same for every backend, and lives here: end, release
whatever happens, then run the after-commit hooks or, when the block failed for a reason
worth retrying, answer :class:`~services.platform.db.DatabaseBusy`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import TracebackType

from services.platform.db import Commits, DatabaseBusy


class TransactionScope(ABC):
    """One transaction of a backend; ``__aenter__`` sets ``_tx``."""

    __slots__ = ("_is_transient", "_on_commit", "_tx")

    def __init__(
        self,
        on_commit: Sequence[Callable[[], None]],
        is_transient: Callable[[BaseException], bool],
    ) -> None:
        self._on_commit = on_commit
        self._is_transient = is_transient
        self._tx: Commits | None = None

    @abstractmethod
    async def _finish(self, failed: bool) -> None:
        """Commits the transaction, or rolls it back when the block ``failed``."""

    @abstractmethod
    async def _release(self) -> None:
        """Gives back what ``__aenter__`` took (runs even when :meth:`_finish` raises)."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        tx = self._tx
        assert tx is not None
        try:
            await self._finish(exc is not None)
        finally:
            await self._release()
        if exc is None:
            tx.committed(self._on_commit)
        elif self._is_transient(exc):
            raise DatabaseBusy() from exc
