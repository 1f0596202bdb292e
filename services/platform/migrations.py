"""Alembic upgrades, run by :meth:`services.platform.db.Database.migrate` (only then imported)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection


def upgrade(connection: Connection, migrations: Path) -> None:
    """Upgrades the database behind ``connection`` to the newest revision in ``migrations``."""
    config = Config()
    config.set_main_option("script_location", str(migrations))
    script = ScriptDirectory.from_config(config)

    def steps(revision: Any, _context: Any) -> Any:
        return script._upgrade_revs("head", revision)

    with EnvironmentContext(config, script, fn=steps, destination_rev="head") as env:
        env.configure(connection=connection, fn=steps)
        with env.begin_transaction():
            env.run_migrations()
