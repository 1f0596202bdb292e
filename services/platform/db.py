"""SQLAlchemy 2.x async: SQLite (WAL, one file per service) or PostgreSQL by URL.

The schema is created and upgraded by each service's versioned Alembic migrations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

#: Set in ``session.info`` by :func:`services.platform.outbox.record`.
OUTBOX_WRITTEN = "emporium.outbox_written"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and IMMEDIATE writes."""
    if not is_sqlite(url):
        return create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # One connection: SQLite has one writer anyway, and queueing in-process is cheaper
    # than contending for the file lock.
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: no deadlocked lock upgrades when
        # another process (a canary instance, a migration) shares the file.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """One service's database: engine, sessions, migrations and a readiness ping."""

    def __init__(self, url: str, migrations: Path) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._migrations = migrations
        #: Called after a committed :meth:`transaction` that wrote outbox rows (to wake the
        #: relay; the relay's own transactions write none, so it never wakes itself).
        self.on_commit: list[Callable[[], None]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session
        if session.info.get(OUTBOX_WRITTEN):
            for callback in self.on_commit:
                callback()

    async def migrate(self) -> None:
        """Upgrade the schema to the newest migration."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade, self._migrations)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _upgrade(connection: Connection, migrations: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    script = ScriptDirectory.from_config(config)

    def upgrade(revision: Any, _context: Any) -> Any:
        return script._upgrade_revs("head", revision)

    with EnvironmentContext(config, script, fn=upgrade, destination_rev="head") as env:
        env.configure(connection=connection, fn=upgrade)
        with env.begin_transaction():
            env.run_migrations()
