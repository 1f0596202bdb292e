#!/usr/bin/env python3
"""Per-statement cost of each way a service can reach its database, side by side.

Measures one primary-key read (in its own transaction) and one small write (an UPDATE of
one row plus its commit) with each approach, on a temporary SQLite file (WAL, as the
services use it) and, when ``EMPORIUM_BENCH_POSTGRES_URL`` (or ``--postgres URL``) names a
server, on a fresh PostgreSQL database. Prints µs per operation (the median of
``--rounds`` rounds of ``--count`` operations each) as a Markdown table, the figures
docs/adr/0002-data-path.md quotes.

    .venv/bin/python scripts/bench_data_path.py [--count 2000] [--rounds 5] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.platform.db import Database

ROWS = 1000
metadata = sa.MetaData()
items = sa.Table(
    "items",
    metadata,
    sa.Column("item_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("units", sa.BigInteger, nullable=False),
)
READ = sa.select(items).where(items.c.item_id == sa.bindparam("item_id"))
WRITE = (
    sa.update(items)
    .where(items.c.item_id == sa.bindparam("b_item_id"))
    .values(units=items.c.units + 1)
)
IDS = [f"item-{n:05d}" for n in range(ROWS)]
MIGRATIONS = Path(tempfile.mkdtemp()) / "no-migrations"

Op = Callable[[int], Awaitable[Any]]


async def _timed(op: Op, count: int, rounds: int) -> float:
    for n in range(min(count, 200)):  # warm caches, pools and prepared statements
        await op(n)
    per_round = []
    for _ in range(rounds):
        started = time.perf_counter()
        for n in range(count):
            await op(n)
        per_round.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(per_round)


def _seed_sqlite(path: Path) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(
        "CREATE TABLE items (item_id VARCHAR(36) PRIMARY KEY, name VARCHAR(100) NOT NULL,"
        " units BIGINT NOT NULL)"
    )
    connection.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"name {i}", 0) for i in IDS])
    connection.close()


def _raw_sqlite(path: Path) -> tuple[Op, Op, Callable[[], None]]:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=NORMAL")

    async def read(n: int) -> Any:
        connection.execute("BEGIN")
        row = connection.execute(
            "SELECT item_id, name, units FROM items WHERE item_id = ?", (IDS[n % ROWS],)
        ).fetchone()
        connection.execute("COMMIT")
        return row

    async def write(n: int) -> None:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE items SET units = units + 1 WHERE item_id = ?", (IDS[n % ROWS],))
        connection.execute("COMMIT")

    return read, write, connection.close


def _sync_core(url: str) -> tuple[Op, Op, Callable[[], None]]:
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    async def read(n: int) -> Any:
        with engine.begin() as connection:
            return connection.execute(READ, {"item_id": IDS[n % ROWS]}).first()

    async def write(n: int) -> None:
        with engine.begin() as connection:
            connection.execute(WRITE, {"b_item_id": IDS[n % ROWS]})

    return read, write, engine.dispose


async def _async_variants(url: str) -> dict[str, tuple[Op, Op, Callable[[], Awaitable[Any]]]]:
    engine = create_async_engine(url, pool_size=1, max_overflow=0)

    async def session_read(n: int) -> Any:
        async with AsyncSession(engine) as session, session.begin():
            return (await session.execute(READ, {"item_id": IDS[n % ROWS]})).first()

    async def session_write(n: int) -> None:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(WRITE, {"b_item_id": IDS[n % ROWS]})

    async def core_read(n: int) -> Any:
        async with engine.begin() as connection:
            return (await connection.execute(READ, {"item_id": IDS[n % ROWS]})).first()

    async def core_write(n: int) -> None:
        async with engine.begin() as connection:
            await connection.execute(WRITE, {"b_item_id": IDS[n % ROWS]})

    return {
        "SQLAlchemy AsyncSession + transaction": (session_read, session_write, engine.dispose),
        "SQLAlchemy Core, async engine": (core_read, core_write, _noop),
    }


async def _noop() -> None:
    return None


def _database(url: str) -> tuple[Op, Op, Callable[[], Awaitable[Any]]]:
    db = Database(url, MIGRATIONS)

    async def read(n: int) -> Any:
        async with db.read() as tx:
            return await tx.fetch_one(READ, {"item_id": IDS[n % ROWS]})

    async def write(n: int) -> None:
        async with db.write() as tx:
            await tx.execute(WRITE, {"b_item_id": IDS[n % ROWS]})

    return read, write, db.dispose


async def _aiosqlite(path: Path) -> tuple[Op, Op, Callable[[], Awaitable[Any]]]:
    import aiosqlite

    connection = await aiosqlite.connect(path, isolation_level=None)

    async def read(n: int) -> Any:
        await connection.execute("BEGIN")
        cursor = await connection.execute(
            "SELECT item_id, name, units FROM items WHERE item_id = ?", (IDS[n % ROWS],)
        )
        row = await cursor.fetchone()
        await connection.execute("COMMIT")
        return row

    async def write(n: int) -> None:
        await connection.execute("BEGIN IMMEDIATE")
        await connection.execute(
            "UPDATE items SET units = units + 1 WHERE item_id = ?", (IDS[n % ROWS],)
        )
        await connection.execute("COMMIT")

    return read, write, connection.close


async def bench_sqlite(count: int, rounds: int) -> list[tuple[str, float, float]]:
    path = Path(tempfile.mkdtemp()) / "bench.db"
    _seed_sqlite(path)
    results: list[tuple[str, float, float]] = []
    read, write, close = _raw_sqlite(path)
    results.append(
        ("raw sqlite3", await _timed(read, count, rounds), await _timed(write, count, rounds))
    )
    close()
    read, write, close = _sync_core(f"sqlite:///{path}")
    results.append(
        (
            "SQLAlchemy Core, sync pysqlite, statement built once",
            await _timed(read, count, rounds),
            await _timed(write, count, rounds),
        )
    )
    close()
    aread, awrite, aclose = _database(f"sqlite+aiosqlite:///{path}")
    results.append(
        (
            "**Database (sqlite3 on the loop, compiled once)**",
            await _timed(aread, count, rounds),
            await _timed(awrite, count, rounds),
        )
    )
    await aclose()
    aread, awrite, aclose = await _aiosqlite(path)
    results.append(
        ("aiosqlite alone", await _timed(aread, count, rounds), await _timed(awrite, count, rounds))
    )
    await aclose()
    variants = await _async_variants(f"sqlite+aiosqlite:///{path}")
    for name, (aread, awrite, aclose) in variants.items():
        results.append(
            (
                f"{name} (aiosqlite)",
                await _timed(aread, count, rounds),
                await _timed(awrite, count, rounds),
            )
        )
        await aclose()
    return results


async def _fresh_postgres(admin_url: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    import asyncpg  # type: ignore[import-untyped]

    admin = make_url(admin_url)
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"emporium_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(dsn)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    url = admin.set(drivername="postgresql+asyncpg", database=name)
    engine = create_async_engine(url)
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
        await c.execute(
            sa.insert(items), [{"item_id": i, "name": f"name {i}", "units": 0} for i in IDS]
        )
    await engine.dispose()

    async def drop() -> None:
        connection = await asyncpg.connect(dsn)
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()

    return url.render_as_string(hide_password=False), drop


async def bench_postgres(admin_url: str, count: int, rounds: int) -> list[tuple[str, float, float]]:
    import asyncpg

    url, drop = await _fresh_postgres(admin_url)
    results: list[tuple[str, float, float]] = []
    try:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn)

        async def read(n: int) -> Any:
            async with connection.transaction(readonly=True):
                return await connection.fetchrow(
                    "SELECT item_id, name, units FROM items WHERE item_id = $1", IDS[n % ROWS]
                )

        async def write(n: int) -> None:
            async with connection.transaction():
                await connection.execute(
                    "UPDATE items SET units = units + 1 WHERE item_id = $1", IDS[n % ROWS]
                )

        results.append(
            ("raw asyncpg", await _timed(read, count, rounds), await _timed(write, count, rounds))
        )
        await connection.close()
        dread, dwrite, dclose = _database(url)
        results.append(
            (
                "**Database (asyncpg pool, compiled once)**",
                await _timed(dread, count, rounds),
                await _timed(dwrite, count, rounds),
            )
        )
        await dclose()
        for name, (aread, awrite, aclose) in (await _async_variants(url)).items():
            results.append(
                (
                    f"{name} (asyncpg)",
                    await _timed(aread, count, rounds),
                    await _timed(awrite, count, rounds),
                )
            )
            await aclose()
    finally:
        await drop()
    return results


def _table(title: str, results: list[tuple[str, float, float]]) -> str:
    lines = [f"### {title}", "", "| approach | PK read µs | small write µs |", "|---|---:|---:|"]
    lines += [f"| {name} | {read:.1f} | {write:.1f} |" for name, read, write in results]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", default=os.environ.get("EMPORIUM_BENCH_POSTGRES_URL", ""))
    args = parser.parse_args()
    print(_table("SQLite (WAL, synchronous=NORMAL)", await bench_sqlite(args.count, args.rounds)))
    if args.postgres:
        print()
        print(_table("PostgreSQL", await bench_postgres(args.postgres, args.count, args.rounds)))


if __name__ == "__main__":
    asyncio.run(main())
