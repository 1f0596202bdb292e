"""A tiny publishing-and-consuming application for the bus tests.

Its schema (``migrations/``) holds the outbox, the inbox and an ``effects`` table with
no uniqueness on the event id, so an effect applied twice shows up as two rows. Events
are ``google.protobuf.StringValue`` messages; a value starting with ``poison`` makes
the handler raise.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from google.protobuf.wrappers_pb2 import StringValue

from services.platform import outbox
from services.platform.bus import Bus, dead_letter_stream, decode
from services.platform.consumer import Consumer, Handler
from services.platform.db import Database, Transaction
from services.platform.outbox import Envelope

MIGRATIONS = Path(__file__).parent / "migrations"
EVENT_TYPE = StringValue.DESCRIPTOR.full_name

effects = sa.Table(
    "effects",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("consumer", sa.String(64), nullable=False),
    sa.Column("value", sa.String(200), nullable=False),
)


_EFFECT = sa.insert(effects)
_EFFECT_VALUES = sa.select(effects.c.value).order_by(effects.c.id)
_EFFECT_IDS = sa.select(effects.c.event_id).order_by(effects.c.id)
_INBOX_IDS = sa.select(outbox.inbox.c.event_id)
_UNPUBLISHED = (
    sa.select(sa.func.count())
    .select_from(outbox.outbox)
    .where(outbox.outbox.c.published_at_us.is_(None))
)


class PoisonError(RuntimeError):
    """What the handler raises for a poison event."""


def consumer(
    db: Database, bus: Bus, group: str, stream: str, handler: Handler, **options: Any
) -> Consumer:
    """A member of ``group`` reading ``stream`` that runs ``handler`` for this
    application's events (``options`` go to :class:`Consumer`)."""
    return Consumer(
        db, bus, group=group, streams=[stream], handlers={EVENT_TYPE: handler}, **options
    )


@asynccontextmanager
async def database(url: str) -> AsyncIterator[Database]:
    db = Database(url, MIGRATIONS)
    await db.migrate()
    try:
        yield db
    finally:
        await db.dispose()


def effect_handler(group: str) -> Any:
    """A handler that records one effect row per call (and raises on poison)."""

    async def handle(tx: Transaction, envelope: Envelope) -> None:
        value = StringValue.FromString(envelope.payload).value
        if value.startswith("poison"):
            raise PoisonError(f"cannot digest {value}")
        await tx.execute(
            _EFFECT, {"event_id": envelope.event_id, "consumer": group, "value": value}
        )

    return handle


async def record_events(db: Database, context: str, values: list[str]) -> list[str]:
    """Commits one outbox row per value (one transaction); returns their event ids."""
    async with db.write() as tx:
        recorded = await outbox.SqlOutbox(tx, context).record_many(
            [(StringValue(value=value), value) for value in values]
        )
    return [item.event_id for item in recorded]


async def effect_values(db: Database) -> list[str]:
    """The effects' values, in the order they were applied."""
    async with db.read() as tx:
        return [row["value"] for row in await tx.fetch_all(_EFFECT_VALUES)]


async def effect_event_ids(db: Database) -> list[str]:
    async with db.read() as tx:
        return [row["event_id"] for row in await tx.fetch_all(_EFFECT_IDS)]


async def inbox_event_ids(db: Database) -> list[str]:
    async with db.read() as tx:
        return [row["event_id"] for row in await tx.fetch_all(_INBOX_IDS)]


async def unpublished(db: Database) -> int:
    async with db.read() as tx:
        count = await tx.scalar(_UNPUBLISHED)
    return int(count or 0)


async def stream_event_ids(redis: Any, stream: str) -> list[str]:
    """The event ids on ``stream``, in stream order (duplicates included)."""
    return [decode(fields).event_id for _id, fields in await redis.xrange(stream)]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Polls ``check`` every 20 ms until it holds; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        await asyncio.sleep(0.02)


REPO_ROOT = Path(__file__).resolve().parents[2]


async def spawn_worker(*args: str) -> asyncio.subprocess.Process:
    """Starts ``python -m tests.busapp.worker ARGS`` and waits for it to say READY."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.busapp.worker",
        *args,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    # Generous: a loaded machine takes seconds just to import a fresh interpreter's modules.
    await expect_line(process, "READY", timeout=60.0)
    return process


async def expect_line(
    process: asyncio.subprocess.Process, prefix: str, timeout: float = 10.0
) -> str:
    """The worker's next stdout line starting with ``prefix`` (fails on exit or timeout)."""
    assert process.stdout is not None
    async with asyncio.timeout(timeout):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError(f"worker exited before printing {prefix!r}")
            if line.startswith(prefix):
                return line.strip()


async def kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL, and reap."""
    if process.returncode is None:
        process.kill()
    await process.wait()


async def dead_letters(redis: Any, group: str) -> list[dict[bytes, bytes]]:
    """The fields of each entry on ``group``'s dead-letter stream."""
    return [fields for _id, fields in await redis.xrange(dead_letter_stream(group))]
