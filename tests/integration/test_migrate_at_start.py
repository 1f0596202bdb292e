"""``Database.migrate`` at a service's start: Alembic runs only when the database is behind.

On SQLite and PostgreSQL: a fresh database is migrated to the newest revision (a SQLite
file from the service's schema snapshot in gen/sqlite/, without Alembic); one already there
is left alone without Alembic ever being imported; one a migration behind gets the missing
one; one ahead of the code still refuses to start, as Alembic always made it. Every
snapshot is what its migrations build, and a stale one is never used.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.identity.main import MIGRATIONS
from services.platform.db import Database
from services.platform.migrations import (
    canonical_sql,
    create_from_snapshot,
    newest_revision,
    service_migrations,
    source_snapshot,
    sqlite_snapshot,
    upgrade_database,
)
from tests.support.databases import fresh_database

HEAD = newest_revision(MIGRATIONS)
_TABLES = sa.text("SELECT count(*) FROM outbox")

_MIGRATE_AND_REPORT = """
import asyncio, sys
from pathlib import Path
from services.platform.db import Database

async def main() -> None:
    db = Database(sys.argv[1], Path(sys.argv[2]))
    await db.migrate()
    await db.dispose()
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"alembic", "mako"})
    print(",".join(loaded) or "-")

asyncio.run(main())
"""


async def _revisions_after_migrate(url: str, migrations: Path) -> set[str]:
    db = Database(url, migrations)
    try:
        await db.migrate()
        return await db.revisions()
    finally:
        await db.dispose()


async def _modules_a_start_loads(url: str) -> str:
    """Migrates in a new interpreter, as a service's start does; which of Alembic it loaded."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _MIGRATE_AND_REPORT,
        url,
        str(MIGRATIONS),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0
    return output.decode().strip()


async def test_a_fresh_database_is_migrated_to_the_newest_revision(backend: str, tmp: Path) -> None:
    async with fresh_database(backend, tmp, "identity") as url:
        db = Database(url, MIGRATIONS)
        try:
            assert await db.revisions() == set()
            await db.migrate()
            assert await db.revisions() == {HEAD}
            async with db.read() as tx:
                assert await tx.scalar(_TABLES) == 0
        finally:
            await db.dispose()


async def test_a_start_on_a_migrated_database_never_imports_alembic(
    backend: str, tmp: Path
) -> None:
    async with fresh_database(backend, tmp, "identity") as url:
        # A new SQLite file gets the snapshot; a new PostgreSQL database runs Alembic.
        fresh = "-" if backend == "sqlite" else "alembic,mako"
        assert await _modules_a_start_loads(url) == fresh
        assert await _modules_a_start_loads(url) == "-"
        assert await _revisions_after_migrate(url, MIGRATIONS) == {HEAD}


def _only_the_first_migration(tmp: Path) -> Path:
    """Identity's migrations as they were before 0002."""
    older = tmp / "older"
    (older / "versions").mkdir(parents=True)
    shutil.copy(MIGRATIONS / "versions" / "0001_users_and_signing_keys.py", older / "versions")
    return older


def _schema(path: Path) -> dict[tuple[str, str], str]:
    """Every table and index of a SQLite file (SQL in canonical form), and its revision."""
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
            " AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        connection.close()
    schema = {(kind, name): canonical_sql(sql) for kind, name, sql in rows}
    schema["alembic_version", "rows"] = repr(versions)
    return schema


async def test_a_database_a_migration_behind_gets_the_missing_one(backend: str, tmp: Path) -> None:
    older = _only_the_first_migration(tmp)
    async with fresh_database(backend, tmp, "identity") as url:
        assert await _revisions_after_migrate(url, older) == {"0001"}
        assert await _revisions_after_migrate(url, MIGRATIONS) == {"0002"}
        db = Database(url, MIGRATIONS)
        try:
            async with db.read() as tx:
                assert await tx.scalar(_TABLES) == 0  # 0002 created the outbox
        finally:
            await db.dispose()


async def test_a_database_ahead_of_the_code_refuses_to_start(backend: str, tmp: Path) -> None:
    older = _only_the_first_migration(tmp)
    async with fresh_database(backend, tmp, "identity") as url:
        await _revisions_after_migrate(url, MIGRATIONS)
        db = Database(url, older)  # code that knows only 0001, on a database at 0002
        try:
            with pytest.raises(Exception, match="0002"):
                await db.migrate()
        finally:
            await db.dispose()


@pytest.mark.parametrize("folder", service_migrations(), ids=lambda f: f.parent.name)
def test_each_sqlite_snapshot_is_what_its_migrations_build(folder: Path) -> None:
    committed = source_snapshot(folder)
    assert committed.read_text() == sqlite_snapshot(folder), (
        f"{committed} is stale: run python -m services.platform.migrations"
    )


@pytest.mark.parametrize("folder", service_migrations(), ids=lambda f: f.parent.name)
async def test_a_file_from_the_snapshot_has_the_schema_alembic_builds(
    folder: Path, tmp: Path
) -> None:
    assert create_from_snapshot(str(tmp / "snapshot.db"), folder)
    await upgrade_database(f"sqlite+aiosqlite:///{tmp / 'alembic.db'}", folder)
    assert _schema(tmp / "snapshot.db") == _schema(tmp / "alembic.db")


def test_a_file_with_tables_is_left_as_it_is(tmp: Path) -> None:
    path = tmp / "used.db"
    sqlite3.connect(path).execute("CREATE TABLE notes (body TEXT)").connection.close()
    assert not create_from_snapshot(str(path), MIGRATIONS)
    assert list(_schema_names(path)) == ["notes"]


async def test_a_stale_snapshot_is_not_used(tmp: Path) -> None:
    # 0002 added without rewriting the snapshot: Alembic builds the database instead.
    folder = _only_the_first_migration(tmp)
    snapshot = tmp / "identity.sql"
    snapshot.write_text(sqlite_snapshot(folder))
    shutil.copy(MIGRATIONS / "versions" / "0002_outbox.py", folder / "versions")
    path = tmp / "identity.db"
    assert not create_from_snapshot(str(path), folder, snapshot)
    assert await _revisions_after_migrate(f"sqlite+aiosqlite:///{path}", folder) == {"0002"}
    assert "outbox" in _schema_names(path)


def _schema_names(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        return [name for (name,) in connection.execute(query)]
    finally:
        connection.close()
