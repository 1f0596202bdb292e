"""SQLite through the standard library's ``sqlite3``, on the event loop's thread.

A statement on a local SQLite file takes microseconds, less than handing it to a worker
thread would (aiosqlite: one hop per statement, 50-100 times the statement). So the loop runs
them itself, and never blocks on another process's lock: ``busy_timeout`` is 0 and a
locked database is waited out with an asynchronous backoff.

- WAL, one writer connection: ``BEGIN IMMEDIATE`` (no deadlocked lock upgrades with a
  second process on the file), writes serialized in-process by an asyncio lock.
- Reader connections (``BEGIN DEFERRED``, ``query_only``): reads never take the writer's
  lock, and run while a write transaction is open.
- WAL checkpoints in a worker thread after commits (:mod:`sqlite_checkpoint`), never
  inside a COMMIT on the loop's thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.sql import Executable

from services.platform import db
from services.platform.db_scope import TransactionScope
from services.platform.retry import Backoff
from services.platform.sqlite_checkpoint import Checkpointer

T = TypeVar("T")

_MAX_IDLE_READERS = 4
_TRANSIENT_CODES = frozenset({5, 6, 10})  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR


def is_transient(exc: BaseException) -> bool:
    """Locked/busy databases and I/O errors; not "no such table" or constraint errors."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _TRANSIENT_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text or "disk i/o" in text


def _params(compiled: db.Compiled, params: db.Params | None) -> db.Params:
    if not compiled.defaults:
        return params or {}
    return {**compiled.defaults, **params} if params else compiled.defaults


class SqliteTransaction(db.Commits):
    """Statements of one transaction on one connection."""

    __slots__ = ("_cache", "_connection")

    def __init__(self, connection: sqlite3.Connection, cache: db.StatementCache) -> None:
        super().__init__()
        self._connection = connection
        self._cache = cache

    def _run(self, statement: Executable, params: db.Params | None) -> sqlite3.Cursor:
        compiled = self._cache.get(statement, params)
        try:
            if compiled.expanding:
                sql, values = compiled.expand(params)
                return self._connection.execute(sql, values)
            return self._connection.execute(compiled.sql, _params(compiled, params))
        except sqlite3.IntegrityError as exc:
            raise db.IntegrityViolation(str(exc)) from exc

    async def execute(self, statement: Executable, params: db.Params | None = None) -> int:
        return self._run(statement, params).rowcount

    async def execute_many(self, statement: Executable, rows: Sequence[db.Params]) -> None:
        if not rows:
            return
        compiled = self._cache.get(statement, rows[0])
        try:
            self._connection.executemany(compiled.sql, [_params(compiled, r) for r in rows])
        except sqlite3.IntegrityError as exc:
            raise db.IntegrityViolation(str(exc)) from exc

    async def fetch_one(
        self, statement: Executable, params: db.Params | None = None
    ) -> db.Row | None:
        row: db.Row | None = self._run(statement, params).fetchone()
        return row

    async def fetch_all(
        self, statement: Executable, params: db.Params | None = None
    ) -> list[db.Row]:
        rows: list[db.Row] = self._run(statement, params).fetchall()
        return rows

    async def scalar(self, statement: Executable, params: db.Params | None = None) -> Any:
        row = self._run(statement, params).fetchone()
        return None if row is None else row[0]

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._connection.execute("SAVEPOINT nested")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK TO nested")
            self._connection.execute("RELEASE nested")
            raise
        self._connection.execute("RELEASE nested")


class SqliteBackend:
    """The connections of one SQLite file."""

    def __init__(
        self, url: str, on_commit: list[Callable[[], None]], lock_wait_seconds: float
    ) -> None:
        database = make_url(url).database or ":memory:"
        if database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        self._path = database
        self._shared = database == ":memory:"  # one connection: a second would be empty
        self.dialect: Dialect = SQLiteDialect_pysqlite(paramstyle="named")
        self._cache = db.StatementCache(self.dialect)
        self._on_commit = on_commit
        #: How long to wait for another process's lock before answering DatabaseBusy.
        self._lock_wait = lock_wait_seconds
        self._lock = asyncio.Lock()
        self._writer: sqlite3.Connection | None = None
        self._readers: list[sqlite3.Connection] = []
        self.checkpointer = None if self._shared else Checkpointer(database)

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def write(self) -> _WriteScope:
        return _WriteScope(self)

    def write_one(self) -> _WriteScope:
        """A write transaction as any: here BEGIN and COMMIT cost no round trip."""
        return _WriteScope(self)

    def read(self) -> _ReadScope | _WriteScope:
        return _WriteScope(self) if self._shared else _ReadScope(self)

    async def ping(self) -> None:
        async with self.read() as tx:
            await tx.scalar(_SELECT_ONE)

    async def close(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.close()
        for connection in [*self._readers, *([self._writer] if self._writer else [])]:
            connection.close()
        self._readers.clear()
        self._writer = None

    async def connect(self, *, reader: bool) -> sqlite3.Connection:
        return await self._waiting_out_locks(lambda: self._open(reader))

    def _open(self, reader: bool) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, cached_statements=512
        )
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout=0")
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            if reader:
                connection.execute("PRAGMA query_only=ON")
            elif self.checkpointer is not None:
                # The checkpointer copies the WAL back, off the loop's thread, not COMMIT.
                connection.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            connection.close()
            raise
        return connection

    async def begin(self, connection: sqlite3.Connection, statement: str) -> None:
        """``BEGIN …``, waiting out another process's lock without blocking the loop."""
        await self._waiting_out_locks(lambda: connection.execute(statement))

    async def finish(self, connection: sqlite3.Connection, failed: bool) -> None:
        if not connection.in_transaction:
            return
        if failed:
            connection.execute("ROLLBACK")
            return
        await self._waiting_out_locks(lambda: connection.execute("COMMIT"))
        if self.checkpointer is not None:
            self.checkpointer.committed()

    async def _waiting_out_locks(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, tried again after a short, growing pause while another process
        holds the lock; :class:`DatabaseBusy` once that has lasted ``lock_wait`` seconds."""
        started = time.monotonic()
        backoff = Backoff(initial=0.001, cap=0.05)
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not is_transient(exc):
                    raise
                if time.monotonic() - started > self._lock_wait:
                    raise db.DatabaseBusy() from exc
            await asyncio.sleep(backoff.next())


class _WriteScope(TransactionScope):
    """``async with backend.write() as tx``: the writer connection, under the write lock."""

    __slots__ = ("_backend",)

    def __init__(self, backend: SqliteBackend) -> None:
        super().__init__(backend._on_commit, is_transient)
        self._backend = backend

    async def __aenter__(self) -> SqliteTransaction:
        backend = self._backend
        await backend._lock.acquire()
        try:
            if backend._writer is None:
                backend._writer = await backend.connect(reader=False)
            await backend.begin(backend._writer, "BEGIN IMMEDIATE")
        except BaseException:
            backend._lock.release()
            raise
        tx = SqliteTransaction(backend._writer, backend._cache)
        self._tx = tx
        return tx

    async def _finish(self, failed: bool) -> None:
        assert self._backend._writer is not None
        await self._backend.finish(self._backend._writer, failed)

    async def _release(self) -> None:
        self._backend._lock.release()


class _ReadScope(TransactionScope):
    """``async with backend.read() as tx``: a reader connection in a deferred transaction."""

    __slots__ = ("_backend", "_connection")

    def __init__(self, backend: SqliteBackend) -> None:
        super().__init__(backend._on_commit, is_transient)
        self._backend = backend
        self._connection: sqlite3.Connection | None = None

    async def __aenter__(self) -> SqliteTransaction:
        backend = self._backend
        readers = backend._readers
        connection = readers.pop() if readers else await backend.connect(reader=True)
        connection.execute("BEGIN DEFERRED")  # takes no lock; the first read takes a snapshot
        self._connection = connection
        tx = SqliteTransaction(connection, backend._cache)
        self._tx = tx
        return tx

    async def _finish(self, failed: bool) -> None:
        assert self._connection is not None
        if self._connection.in_transaction:
            self._connection.execute("ROLLBACK" if failed else "COMMIT")

    async def _release(self) -> None:
        assert self._connection is not None
        if len(self._backend._readers) < _MAX_IDLE_READERS:
            self._backend._readers.append(self._connection)
        else:
            self._connection.close()


def _select_one() -> Executable:
    from sqlalchemy import literal_column, select

    return select(literal_column("1"))


_SELECT_ONE = _select_one()
