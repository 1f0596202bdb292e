"""``Database.migrate`` at a service's start: Alembic runs only when the database is behind.

On SQLite and PostgreSQL: a fresh database is migrated to the newest revision; one already
there is left alone without Alembic ever being imported; one a migration behind gets the
missing one; one ahead of the code still refuses to start, as Alembic always made it.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.identity.main import MIGRATIONS
from services.platform.db import Database
from services.platform.migrations import newest_revision
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
        assert await _modules_a_start_loads(url) == "alembic,mako"  # fresh: migrates
        assert await _modules_a_start_loads(url) == "-"
        assert await _revisions_after_migrate(url, MIGRATIONS) == {HEAD}


async def test_a_database_a_migration_behind_gets_the_missing_one(backend: str, tmp: Path) -> None:
    older = tmp / "older"
    (older / "versions").mkdir(parents=True)
    shutil.copy(MIGRATIONS / "versions" / "0001_users_and_signing_keys.py", older / "versions")
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
    older = tmp / "older"
    (older / "versions").mkdir(parents=True)
    shutil.copy(MIGRATIONS / "versions" / "0001_users_and_signing_keys.py", older / "versions")
    async with fresh_database(backend, tmp, "identity") as url:
        await _revisions_after_migrate(url, MIGRATIONS)
        db = Database(url, older)  # code that knows only 0001, on a database at 0002
        try:
            with pytest.raises(Exception, match="0002"):
                await db.migrate()
        finally:
            await db.dispose()
