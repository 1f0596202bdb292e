"""Schema versions: which revision is newest, and Alembic upgrades to it.

A service's migrations are ``versions/NNNN_<what>.py`` with ``revision = "NNNN"`` and
``down_revision`` the one before (``tests/unit/test_migration_files.py`` holds every
folder to that), so the newest revision is the highest number in a file name. A start
compares it with the database's ``alembic_version`` without importing Alembic, and imports
Alembic (12 MB, a quarter of a second) only when there is something to upgrade —
docs/adr/0003-migrations-at-start.md has the measurements.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection

#: ``versions/0007_add_refunds.py``: revision ``0007``.
FILE_NAME = re.compile(r"(?P<revision>\d{4})_\w+\.py")


def revision_files(migrations: Path) -> list[Path]:
    """The migration files of ``migrations``, oldest first."""
    return sorted(p for p in (migrations / "versions").iterdir() if FILE_NAME.fullmatch(p.name))


def newest_revision(migrations: Path) -> str | None:
    """The head revision of ``migrations`` (None if there is none), from file names alone."""
    files = revision_files(migrations)
    if not files:
        return None
    match = FILE_NAME.fullmatch(files[-1].name)
    assert match is not None
    return match["revision"]


async def upgrade_database(url: str, migrations: Path) -> None:
    """Upgrades the database at ``url`` to the newest revision in ``migrations``."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # The standard library's driver on the loop's thread, as the SQLite backend runs
        # its statements (and nothing is served yet): no asyncio engine and the ORM it
        # imports (5 MB).
        from sqlalchemy import create_engine

        engine = create_engine(parsed.set(drivername="sqlite"))
        try:
            with engine.begin() as connection:
                upgrade(connection, migrations)
        finally:
            engine.dispose()
        return

    from sqlalchemy.ext.asyncio import create_async_engine

    async_engine = create_async_engine(url)
    try:
        async with async_engine.begin() as async_connection:
            await async_connection.run_sync(upgrade, migrations)
    finally:
        await async_engine.dispose()


def upgrade(connection: Connection, migrations: Path) -> None:
    """Upgrades the database behind ``connection`` to the newest revision in ``migrations``."""
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations))
    script = ScriptDirectory.from_config(config)

    def steps(revision: Any, _context: Any) -> Any:
        return script._upgrade_revs("head", revision)

    with EnvironmentContext(config, script, fn=steps, destination_rev="head") as env:
        env.configure(connection=connection, fn=steps)
        with env.begin_transaction():
            env.run_migrations()
