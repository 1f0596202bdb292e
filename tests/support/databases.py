"""Database URLs for tests: a fresh SQLite file, or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

POSTGRES_ENV = "EMPORIUM_TEST_POSTGRES_URL"


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def require_postgres() -> str:
    url = postgres_admin_url()
    if url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (set by .ci/run)")
    return url


@asynccontextmanager
async def fresh_database(backend: str, tmp: Path, service: str) -> AsyncIterator[str]:
    """Yields the URL of a new, empty database for ``service`` and drops it afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / f'{service}-{uuid.uuid4().hex[:8]}.db'}"
        return
    import asyncpg  # type: ignore[import-untyped]

    admin = make_url(require_postgres())
    name = f"emporium_test_{service}_{uuid.uuid4().hex[:10]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()
