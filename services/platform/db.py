"""A service's database: SQLite (WAL, one file per service) or PostgreSQL by URL.

Handlers work in transactions: ``async with db.write() as tx`` (serialized with other
writes, commits on success) or ``async with db.read() as tx`` (never takes the writer's
lock). A :class:`Transaction` runs SQLAlchemy Core statements, compiled once per statement
object and cached, with bound parameters — SQLAlchemy builds the SQL, it does not sit on
the per-statement path (docs/adr/0002-data-path.md has the measurements).

The schema is created and upgraded by each service's versioned Alembic migrations;
Alembic is imported only when the database is behind the newest of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement, Executable, TableClause, text
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.types import BigInteger, Integer

from services.platform import migrations
from services.platform.errors import Unavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

Params = Mapping[str, Any]

#: The type of an autoincrementing integer key: BIGINT, but INTEGER on SQLite, where only an
#: ``INTEGER PRIMARY KEY`` (the rowid) autoincrements. Tables and migrations both use it.
SERIAL_ID = BigInteger().with_variant(Integer(), "sqlite")


class Row(Protocol):
    """A result row: values by column name (or position)."""

    def __getitem__(self, key: str | int, /) -> Any: ...


class Transaction(Protocol):
    """One transaction's statements (SQLAlchemy Core, bound parameters)."""

    #: Set by the SQL outbox: committing this transaction wakes the relay.
    outbox_written: bool

    async def execute(self, statement: Executable, params: Params | None = None) -> int:
        """Runs a statement; the number of rows it changed."""

    async def execute_many(self, statement: Executable, rows: Sequence[Params]) -> None:
        """Runs one statement for many parameter rows (one prepared statement)."""

    async def fetch_one(self, statement: Executable, params: Params | None = None) -> Row | None:
        """The first row of a query, or ``None``."""

    async def fetch_all(self, statement: Executable, params: Params | None = None) -> list[Row]:
        """Every row of a query."""

    async def scalar(self, statement: Executable, params: Params | None = None) -> Any:
        """The first column of the first row, or ``None``."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Runs ``callback`` once this transaction has committed (never if it rolls back)."""

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: an error in the block undoes only the block's statements
        (on PostgreSQL, the only way to go on after an :class:`IntegrityViolation`)."""


class Commits:
    """The after-commit bookkeeping every backend's transaction shares."""

    __slots__ = ("_callbacks", "outbox_written")

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] | None = None
        self.outbox_written = False

    def after_commit(self, callback: Callable[[], None]) -> None:
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

    def committed(self, hooks: Sequence[Callable[[], None]]) -> None:
        """Runs the database's hooks (if outbox rows were written), then the callbacks."""
        if self.outbox_written:
            for hook in hooks:
                hook()
        if self._callbacks is not None:
            for callback in self._callbacks:
                callback()


class IntegrityViolation(Exception):
    """A statement broke a constraint (unique, primary key, foreign key, not null).

    On PostgreSQL the transaction cannot continue after it; let it propagate (or map it to
    a domain error) and the transaction rolls back.
    """


class InsertNew(Insert):
    """``INSERT … ON CONFLICT DO NOTHING`` (:func:`insert_new`)."""

    inherit_cache = True


def insert_new(table: TableClause) -> InsertNew:
    """An insert that skips a row whose key exists (the statement counts 0 rows) instead of
    failing: the transaction goes on without the savepoint a caught constraint error needs
    on PostgreSQL. A concurrent insert of the same key still waits for the first one's
    transaction there, then skips. PostgreSQL and SQLite (3.24 and later) spell it alike;
    other constraints (not null, foreign keys) still raise :class:`IntegrityViolation`."""
    return InsertNew(table)


@compiles(InsertNew)
def _compile_insert_new(element: InsertNew, compiler: SQLCompiler, **kw: Any) -> str:
    insert = compiler.visit_insert(element, **kw)  # type: ignore[no-untyped-call]
    return f"{insert} ON CONFLICT DO NOTHING"


class DatabaseBusy(Unavailable):
    """The database stayed locked or unreachable longer than a request may wait (UNAVAILABLE)."""

    def __init__(self, message: str = "the database is busy; retry later") -> None:
        super().__init__(message)


class Compiled:
    """A statement compiled for one dialect: SQL text, parameter order and defaults."""

    __slots__ = ("_source", "defaults", "expanding", "names", "sql")

    def __init__(self, source: SQLCompiler) -> None:
        self._source = source
        self.sql: str = source.string
        #: The positional dialect's parameter order (empty for named parameters).
        self.names: tuple[str, ...] = tuple(source.positiontup or ())
        #: Values bound in the statement itself (literals, LIMIT), overridable by the caller.
        self.defaults: dict[str, Any] = {
            name: value for name, value in source.params.items() if not source.binds[name].required
        }
        #: ``IN`` lists: the SQL depends on each call's values (see :meth:`expand`).
        self.expanding = bool(source.post_compile_params)

    def expand(self, params: Params | None) -> tuple[str, Any]:
        """SQL and parameters for one call of a statement with ``IN`` lists."""
        state = self._source.construct_expanded_state(dict(params or {}))
        if state.positiontup is None:
            return state.statement, state.parameters
        return state.statement, [state.parameters[name] for name in state.positiontup]


class StatementCache:
    """Compiles each statement object once per dialect (per set of insert/update keys).

    Statements are meant to be module constants with ``bindparam``s; the cache keeps what
    it compiled alive, and starts over when it grows past ``limit`` (statements built per
    call, such as ``IN`` lists, then cost a compile each, as they would anyway).
    """

    def __init__(self, dialect: Dialect, limit: int = 2048) -> None:
        self._dialect = dialect
        self._limit = limit
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[ClauseElement, Compiled]] = {}

    def get(self, statement: Executable, params: Params | None) -> Compiled:
        # INSERT and UPDATE without .values() take their columns from the parameters, as
        # SQLAlchemy's own execute(insert(table), {...}) does.
        keys = tuple(params) if params and isinstance(statement, (Insert, Update)) else ()
        key = (id(statement), keys)
        found = self._compiled.get(key)
        if found is not None:
            return found[1]
        if len(self._compiled) >= self._limit:
            self._compiled.clear()
        compiled = self._compile(statement, keys)
        self._compiled[key] = (statement, compiled)  # type: ignore[assignment]
        return compiled

    def _compile(self, statement: Executable, keys: tuple[str, ...]) -> Compiled:
        assert isinstance(statement, ClauseElement)
        source = statement.compile(dialect=self._dialect, column_keys=list(keys) or None)
        assert isinstance(source, SQLCompiler)
        return Compiled(source)


class Backend(Protocol):
    """What :class:`Database` delegates to (``db_sqlite`` or ``db_postgres``)."""

    dialect: Dialect

    def write(self) -> AbstractAsyncContextManager[Transaction]: ...

    def write_one(self) -> AbstractAsyncContextManager[Transaction]: ...

    def read(self) -> AbstractAsyncContextManager[Transaction]: ...

    def is_transient(self, exc: BaseException) -> bool: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


_VERSIONS = text("SELECT version_num FROM alembic_version")
_SQLITE_HAS_VERSIONS = text(
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
)
# Alembic's table is in the connection's default schema: the first of the search path.
_POSTGRES_HAS_VERSIONS = text("SELECT to_regclass('alembic_version') IS NOT NULL")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class Database:
    """One service's database: transactions, migrations, a readiness ping, a commit hook."""

    def __init__(self, url: str, migrations: Path, *, lock_wait_seconds: float = 10.0) -> None:
        self.url = url
        self._migrations = migrations
        #: Called after every committed transaction that wrote outbox rows (to wake the
        #: relay; the relay's own transactions write none, so it never wakes itself).
        self.on_commit: list[Callable[[], None]] = []
        self._backend: Backend
        if is_sqlite(url):
            from services.platform.db_sqlite import SqliteBackend

            self._backend = SqliteBackend(url, self.on_commit, lock_wait_seconds)
        else:
            from services.platform.db_postgres import PostgresBackend

            self._backend = PostgresBackend(url, self.on_commit)
        self.dialect = self._backend.dialect

    def write(self) -> AbstractAsyncContextManager[Transaction]:
        """A read-write transaction: commits when the block ends, rolls back on error.

        Writes are serialized within the process; on SQLite a lock held by another process
        is waited out asynchronously (never blocking the loop), up to a bound, then
        :class:`DatabaseBusy`.
        """
        return self._backend.write()

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """A read-only transaction (a consistent snapshot; never waits for writers)."""
        return self._backend.read()

    def write_one(self) -> AbstractAsyncContextManager[Transaction]:
        """A write of exactly one statement, atomic by itself: on PostgreSQL it runs
        without ``BEGIN``/``COMMIT`` (two round trips less; a second statement in the
        block is an error there), on SQLite it is a :meth:`write`."""
        return self._backend.write_one()

    def is_transient(self, exc: BaseException) -> bool:
        """Whether retrying the transaction may succeed (lock, busy, I/O, connection)."""
        return isinstance(exc, DatabaseBusy) or self._backend.is_transient(exc)

    async def migrate(self) -> None:
        """Upgrade the schema to the newest migration, if the database is not there yet.

        Comparing the newest migration file with ``alembic_version`` costs no Alembic, nor
        does a new SQLite file (it gets the folder's schema snapshot); Alembic is imported
        only to upgrade (see :mod:`services.platform.migrations`).
        """
        head = migrations.newest_revision(self._migrations)
        behind = head is not None and await self.revisions() != {head}
        if behind and not self._created_from_snapshot():
            await migrations.upgrade_database(self.url, self._migrations)
        await self._backend.ping()  # connects now, not on the first request

    def _created_from_snapshot(self) -> bool:
        """Whether this was a new SQLite file that now has the snapshot's schema."""
        if not is_sqlite(self.url):
            return False
        return migrations.create_from_snapshot(
            make_url(self.url).database or ":memory:", self._migrations
        )

    async def revisions(self) -> set[str]:
        """The revisions the database's ``alembic_version`` table holds (none if no table)."""
        exists = _SQLITE_HAS_VERSIONS if is_sqlite(self.url) else _POSTGRES_HAS_VERSIONS
        async with self._backend.read() as tx:
            if not await tx.scalar(exists):
                return set()
            return {row[0] for row in await tx.fetch_all(_VERSIONS)}

    async def ping(self) -> None:
        await self._backend.ping()

    async def dispose(self) -> None:
        await self._backend.close()
