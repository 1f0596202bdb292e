"""The platform Database on real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy.engine import make_url

from services.platform.db import Database, DatabaseBusy, IntegrityViolation, insert_new
from services.platform.outbox import SqlOutbox, inbox, outbox
from tests.busapp import MIGRATIONS
from tests.support.databases import fresh_database

effects = sa.Table(
    "effects",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("consumer", sa.String(64), nullable=False),
    sa.Column("value", sa.String(200), nullable=False),
)
_EFFECT = sa.insert(effects).values(consumer="tests")
_ADD = _EFFECT
_PROCESSED = sa.insert(inbox)
_PROCESS_NEW = insert_new(inbox)
_VALUE = sa.select(effects.c.value).where(effects.c.event_id == sa.bindparam("event_id"))
_COUNT = sa.select(sa.func.count()).select_from(effects)


@pytest.fixture
async def db(backend: str, tmp: Path) -> AsyncIterator[Database]:
    async with fresh_database(backend, tmp, "db") as url:
        database = Database(url, MIGRATIONS, lock_wait_seconds=0.5)
        await database.migrate()
        try:
            yield database
        finally:
            await database.dispose()


async def test_a_write_commits_and_a_failed_write_leaves_nothing(db: Database) -> None:
    async with db.write() as tx:
        await tx.execute(_ADD, {"event_id": "a", "value": "kept"})

    async def failing() -> None:
        async with db.write() as tx:
            await tx.execute(_ADD, {"event_id": "b", "value": "rolled back"})
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        await failing()
    async with db.read() as tx:
        assert await tx.scalar(_COUNT) == 1
        row = await tx.fetch_one(_VALUE, {"event_id": "a"})
        assert row is not None
        assert row["value"] == "kept"
        assert await tx.fetch_one(_VALUE, {"event_id": "b"}) is None


async def test_a_read_does_not_wait_for_an_open_write(db: Database) -> None:
    writing, release = asyncio.Event(), asyncio.Event()

    async def write() -> None:
        async with db.write() as tx:
            await tx.execute(_ADD, {"event_id": "a", "value": "later"})
            writing.set()
            await release.wait()

    task = asyncio.create_task(write())
    await writing.wait()
    async with db.read() as tx:  # the write transaction is still open
        assert await tx.scalar(_COUNT) == 0
    release.set()
    await task
    async with db.read() as tx:
        assert await tx.scalar(_COUNT) == 1


async def test_constraint_violations_are_integrity_violations(db: Database) -> None:
    row = {"event_id": "a", "consumer": "tests", "processed_at_us": 1}
    async with db.write() as tx:
        await tx.execute(_PROCESSED, row)
    with pytest.raises(IntegrityViolation):
        async with db.write() as tx:
            await tx.execute(_PROCESSED, row)


async def test_insert_new_skips_an_existing_key_and_the_transaction_goes_on(
    db: Database,
) -> None:
    row = {"event_id": "a", "consumer": "tests", "processed_at_us": 1}
    async with db.write() as tx:
        assert await tx.execute(_PROCESS_NEW, row) == 1
        assert await tx.execute(_PROCESS_NEW, {**row, "processed_at_us": 2}) == 0
        await tx.execute(_ADD, {"event_id": "a", "value": "after the skipped row"})
    async with db.read() as tx:
        assert await tx.scalar(_COUNT) == 1
        stored = await tx.fetch_one(sa.select(inbox.c.processed_at_us))
    assert stored is not None
    assert stored["processed_at_us"] == 1
    with pytest.raises(IntegrityViolation):  # only key conflicts are skipped
        async with db.write() as tx:
            await tx.execute(_PROCESS_NEW, {**row, "event_id": "b", "processed_at_us": None})


async def test_a_write_of_one_statement_commits_it_and_refuses_a_second(
    db: Database, backend: str
) -> None:
    async with db.write_one() as tx:
        await tx.execute(_ADD, {"event_id": "a", "value": "alone"})
    async with db.read() as tx:
        assert await tx.scalar(_COUNT) == 1
    if backend == "postgres":  # there the block is no transaction: a second is refused
        async with db.write_one() as tx:
            await tx.execute(_ADD, {"event_id": "b", "value": "first"})
            with pytest.raises(RuntimeError, match="one statement"):
                await tx.execute(_ADD, {"event_id": "c", "value": "second"})


async def test_in_lists_and_many_rows_in_one_statement(db: Database) -> None:
    async with db.write() as tx:
        await tx.execute_many(_ADD, [{"event_id": str(n), "value": f"v{n}"} for n in range(5)])
    async with db.read() as tx:
        rows = await tx.fetch_all(
            sa.select(effects.c.value)
            .where(effects.c.event_id.in_(["1", "3", "9"]))
            .order_by(effects.c.event_id)
        )
    assert [row["value"] for row in rows] == ["v1", "v3"]


async def test_commit_hooks_run_after_outbox_writes_and_callbacks_after_commit(
    db: Database,
) -> None:
    woken: list[str] = []
    db.on_commit.append(lambda: woken.append("relay"))
    async with db.write() as tx:
        await tx.execute(_ADD, {"event_id": "a", "value": "no event"})
        tx.after_commit(lambda: woken.append("callback"))
    assert woken == ["callback"]
    async with db.write() as tx:
        await SqlOutbox(tx, "tests").record_many(
            [(StringValue(value="x"), "a"), (StringValue(value="y"), "a")]
        )
        assert woken == ["callback"]  # not before the commit
    assert woken == ["callback", "relay"]

    async def failing() -> None:
        async with db.write() as tx:
            await SqlOutbox(tx, "tests").record(StringValue(value="z"), "a")
            tx.after_commit(lambda: woken.append("never"))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await failing()
    assert woken == ["callback", "relay"]
    async with db.read() as tx:
        rows = await tx.fetch_all(sa.select(outbox.c.payload).order_by(outbox.c.id))
    assert [StringValue.FromString(bytes(r["payload"])).value for r in rows] == ["x", "y"]


async def test_a_read_runs_its_after_commit_callbacks_once_it_ends_and_never_on_error(
    db: Database,
) -> None:
    ran: list[str] = []
    async with db.read() as tx:
        await tx.scalar(_COUNT)
        tx.after_commit(lambda: ran.append("read"))
        assert ran == []
    assert ran == ["read"]

    async def failing() -> None:
        async with db.read() as tx:
            tx.after_commit(lambda: ran.append("never"))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await failing()
    assert ran == ["read"]


def _sqlite_path(db: Database) -> str:
    database = make_url(db.url).database
    assert database is not None
    return database


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_another_process_lock_is_waited_out_without_blocking_the_loop(
    db: Database,
) -> None:
    other = sqlite3.connect(_sqlite_path(db), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # what a second process holding the write lock does
    ticked = asyncio.Event()

    async def tick() -> None:
        for _ in range(10):
            await asyncio.sleep(0.005)
        ticked.set()

    ticker = asyncio.create_task(tick())

    async def write() -> None:
        async with db.write() as tx:
            await tx.execute(_ADD, {"event_id": "a", "value": "after the lock"})

    task = asyncio.create_task(write())
    await asyncio.wait_for(ticked.wait(), 5)  # the loop keeps running while the write waits
    assert not task.done()
    other.execute("COMMIT")
    await asyncio.wait_for(task, 5)
    ticker.cancel()
    other.close()
    async with db.read() as tx:
        assert await tx.scalar(_COUNT) == 1


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_lock_held_too_long_answers_database_busy(db: Database) -> None:
    other = sqlite3.connect(_sqlite_path(db), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseBusy) as caught:
            async with db.write() as tx:
                await tx.execute(_ADD, {"event_id": "a", "value": "never"})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert db.is_transient(caught.value)
    async with db.write() as tx:  # and the database works again once the lock is gone
        await tx.execute(_ADD, {"event_id": "a", "value": "now"})


async def test_a_missing_table_is_not_transient(db: Database) -> None:
    missing = sa.select(sa.table("no_such_table", sa.column("x")))

    async def read() -> None:
        async with db.read() as tx:
            await tx.fetch_all(missing)

    with pytest.raises(Exception, match="no_such_table") as caught:
        await read()
    assert not isinstance(caught.value, DatabaseBusy)
    assert not db.is_transient(caught.value)


async def test_sqlite_checkpoints_the_wal_after_commits_off_the_loop_thread(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}"
    database = Database(url, MIGRATIONS, lock_wait_seconds=0.5)
    await database.migrate()
    try:
        for n in range(200):
            async with database.write() as tx:
                await tx.execute(_ADD, {"event_id": f"e{n}", "value": "x" * 100})
        backend = database._backend
        checkpointer = backend.checkpointer
        assert checkpointer is not None
        assert backend._writer is not None
        # COMMIT never checkpoints on the writer: the checkpointer does, after the commits.
        assert backend._writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for _ in range(50):
            if checkpointer.done:
                break
            await asyncio.sleep(0.05)
        assert checkpointer.done >= 1
        async with database.read() as tx:
            assert await tx.scalar(_COUNT) == 200
    finally:
        await database.dispose()
    assert backend._writer is None
