"""PostgreSQL through an asyncpg pool; SQLAlchemy only compiles the statements.

asyncpg prepares each distinct SQL text once per connection (its statement cache), and
:class:`~services.platform.db.StatementCache` compiles each statement object once, so a
request pays for the round trip and little else (docs/adr/0002-data-path.md). No round
trip is spent on nothing:

- A read runs its statements without ``BEGIN``/``COMMIT``. At PostgreSQL's READ COMMITTED
  (the services' level) every statement takes its own snapshot inside a transaction too,
  so a read sees exactly what it would in one, for two round trips less. So does a write
  of one statement (``write_one``): a statement is atomic on its own.
- A connection goes back to the pool without asyncpg's reset query (``RESET ALL``,
  ``UNLISTEN *``, ``CLOSE ALL``, advisory unlocks: one more round trip per transaction).
  The services set no session state, listen to nothing, open no cursors and take no
  advisory locks; asyncpg still rolls back a transaction left open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.sql import Executable

from services.platform import db
from services.platform.db_scope import TransactionScope

#: Connection failures, serialization failures, deadlocks, shutdowns, too many clients.
_TRANSIENT_STATES = ("08", "40001", "40P01", "57P01", "57P02", "57P03", "53300")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.ConnectionDoesNotExistError)):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_TRANSIENT_STATES)


@contextmanager
def _busy_when_transient() -> Iterator[None]:
    """An error worth retrying the transaction for (:func:`is_transient`) surfaces as
    :class:`DatabaseBusy`; any other as it is."""
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            raise db.DatabaseBusy() from exc
        raise


def _args(compiled: db.Compiled, params: db.Params | None) -> tuple[str, list[Any]]:
    if compiled.expanding:
        sql, values = compiled.expand(params)
        return sql, list(values)
    if params is None:
        return compiled.sql, [compiled.defaults[name] for name in compiled.names]
    defaults = compiled.defaults
    return compiled.sql, [
        params[name] if name in params else defaults[name] for name in compiled.names
    ]


def _count(status: str) -> int:
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


class PostgresTransaction(db.Commits):
    """Statements of one transaction on one pooled connection (``single``: one statement
    that is its own transaction, see :meth:`services.platform.db.Database.write_one`)."""

    __slots__ = ("_cache", "_connection", "_spent")

    def __init__(self, connection: Any, cache: db.StatementCache, *, single: bool) -> None:
        super().__init__()
        self._connection = connection
        self._cache = cache
        self._spent: bool | None = False if single else None

    def _spend(self, statements: int) -> None:
        """Counts ``statements`` against a single statement's block (no-op otherwise)."""
        if self._spent is None:
            return
        if self._spent or statements > 1:
            raise RuntimeError("write_one() runs one statement; use write() for more")
        self._spent = True

    def _sql(self, statement: Executable, params: db.Params | None) -> tuple[str, list[Any]]:
        self._spend(1)
        return _args(self._cache.get(statement, params), params)

    async def execute(self, statement: Executable, params: db.Params | None = None) -> int:
        sql, args = self._sql(statement, params)
        try:
            return _count(await self._connection.execute(sql, *args))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise db.IntegrityViolation(str(exc)) from exc

    async def execute_many(self, statement: Executable, rows: Sequence[db.Params]) -> None:
        if not rows:
            return
        self._spend(2)  # several rows: several statements
        compiled = self._cache.get(statement, rows[0])
        try:
            await self._connection.executemany(
                compiled.sql, [_args(compiled, row)[1] for row in rows]
            )
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise db.IntegrityViolation(str(exc)) from exc

    async def fetch_one(
        self, statement: Executable, params: db.Params | None = None
    ) -> db.Row | None:
        sql, args = self._sql(statement, params)
        row: db.Row | None = await self._connection.fetchrow(sql, *args)
        return row

    async def fetch_all(
        self, statement: Executable, params: db.Params | None = None
    ) -> list[db.Row]:
        sql, args = self._sql(statement, params)
        rows: list[db.Row] = await self._connection.fetch(sql, *args)
        return rows

    async def scalar(self, statement: Executable, params: db.Params | None = None) -> Any:
        sql, args = self._sql(statement, params)
        return await self._connection.fetchval(sql, *args)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self._connection.transaction():  # nested in a transaction: a SAVEPOINT
            yield


class PostgresBackend:
    """An asyncpg pool for one service's database (created on first use)."""

    def __init__(self, url: str, on_commit: list[Callable[[], None]], *, size: int = 10) -> None:
        parsed = make_url(url)
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self.dialect: Dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
        self._cache = db.StatementCache(self.dialect)
        self._on_commit = on_commit
        self._pool: Any = None
        self._opening = asyncio.Lock()

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def write(self) -> _Scope:
        return _Scope(self, readonly=False)

    def read(self) -> _Scope:
        return _Scope(self, readonly=True)

    def write_one(self) -> _Scope:
        return _Scope(self, readonly=True, single=True)

    async def pool(self) -> Any:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=1,
                        max_size=self._size,
                        statement_cache_size=512,
                        reset=_keep_session,
                    )
        return self._pool

    async def ping(self) -> None:
        pool = await self.pool()
        await pool.fetchval("SELECT 1")

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


async def _keep_session(_connection: Any) -> None:
    """The pool's reset: nothing beyond the rollback asyncpg always does (module docs)."""


class _Scope(TransactionScope):
    """A write: a pooled connection, ``BEGIN`` … ``COMMIT``/``ROLLBACK``; a read or a
    single statement: the connection's statements in autocommit (module docs)."""

    __slots__ = ("_backend", "_connection", "_pool", "_readonly", "_single", "_transaction")

    def __init__(self, backend: PostgresBackend, *, readonly: bool, single: bool = False) -> None:
        super().__init__(backend._on_commit, is_transient)
        self._backend = backend
        self._readonly = readonly
        self._single = single
        self._pool: Any = None
        self._connection: Any = None
        self._transaction: Any = None

    async def __aenter__(self) -> PostgresTransaction:
        with _busy_when_transient():
            self._pool = await self._backend.pool()
            self._connection = await self._pool.acquire()
        try:
            if not self._readonly:
                with _busy_when_transient():
                    self._transaction = self._connection.transaction()
                    await self._transaction.start()
        except BaseException:
            await self._pool.release(self._connection)
            raise
        tx = PostgresTransaction(self._connection, self._backend._cache, single=self._single)
        self._tx = tx
        return tx

    async def _finish(self, failed: bool) -> None:
        if self._transaction is None:
            return
        with _busy_when_transient():
            if failed:
                await self._transaction.rollback()
            else:
                await self._transaction.commit()

    async def _release(self) -> None:
        await self._pool.release(self._connection)
