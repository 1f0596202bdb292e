"""Every service's migrations build exactly the schema its ``Table`` metadata describes.

Each table is written twice (a ``Table`` the code queries, a migration that creates it);
this compares the two on a freshly migrated database with Alembic's ``compare_metadata``
(tables, columns, types, nullability, indexes, unique constraints), on SQLite and on
PostgreSQL, so neither side can change alone.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from services.platform import outbox as platform_outbox
from services.platform.db import Database
from tests.support.databases import fresh_database

#: Each service and the platform tables (outbox, inbox) its migrations create too.
SERVICES: dict[str, tuple[str, ...]] = {
    "identity": ("outbox",),
    "catalog": ("outbox",),
    "inventory": ("outbox",),
    "payment": ("outbox",),
    "order": ("outbox", "inbox"),
    "fulfillment": ("outbox", "inbox"),
}


def expected_metadata(service: str) -> sa.MetaData:
    """The service's own tables (``tables.py``, else ``repository.py``) plus the platform's."""
    try:
        module = importlib.import_module(f"services.{service}.tables")
    except ModuleNotFoundError:
        module = importlib.import_module(f"services.{service}.repository")
    combined = sa.MetaData()
    for table in module.metadata.tables.values():
        table.to_metadata(combined)
    for name in SERVICES[service]:
        platform_outbox.metadata.tables[name].to_metadata(combined)
    return combined


def _migrations(service: str) -> Path:
    main = importlib.import_module(f"services.{service}.main")
    path: Path = main.MIGRATIONS
    return path


def _not_alembics(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
    return not (kind == "table" and name == "alembic_version")


async def differences(url: str, metadata: sa.MetaData) -> list[Any]:
    """What Alembic would change to make the database at ``url`` match ``metadata``."""

    def compare(connection: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": _not_alembics}
        )
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def _migrated(url: str, service: str) -> None:
    db = Database(url, _migrations(service))
    try:
        await db.migrate()
    finally:
        await db.dispose()


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_the_migrations_build_the_tables_the_code_declares(
    backend: str, tmp: Path, service: str
) -> None:
    async with fresh_database(backend, tmp, service) as url:
        await _migrated(url, service)
        assert await differences(url, expected_metadata(service)) == []


async def test_a_column_only_the_code_declares_is_a_difference(backend: str, tmp: Path) -> None:
    async with fresh_database(backend, tmp, "identity") as url:
        await _migrated(url, "identity")
        metadata = expected_metadata("identity")
        metadata.tables["users"].append_column(sa.Column("nickname", sa.String(40)))
        found = await differences(url, metadata)
    assert [(d[0], d[2], d[3].name) for d in found] == [("add_column", "users", "nickname")]


async def test_a_column_only_the_migrations_create_is_a_difference(backend: str, tmp: Path) -> None:
    async with fresh_database(backend, tmp, "identity") as url:
        await _migrated(url, "identity")
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    sa.text("ALTER TABLE users ADD COLUMN nickname VARCHAR(40)")
                )
        finally:
            await engine.dispose()
        found = await differences(url, expected_metadata("identity"))
    assert [(d[0], d[2], d[3].name) for d in found] == [("remove_column", "users", "nickname")]
