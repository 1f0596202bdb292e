"""The relay is woken by commits that wrote events, and only by those (no busy loop)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import sqlalchemy as sa
from emporium.identity.v1 import events_pb2

from services.identity.main import MIGRATIONS
from services.platform import outbox
from services.platform.db import Database


async def test_only_commits_that_write_outbox_rows_wake_the_relay(tmp: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp / 'identity.db'}", MIGRATIONS)
    await db.migrate()
    wakeups: list[int] = []
    db.on_commit.append(lambda: wakeups.append(1))
    try:
        async with db.write() as tx:
            await tx.execute(sa.select(sa.literal(1)))
        assert wakeups == []
        async with db.write() as tx:
            await outbox.SqlOutbox(tx, "identity").record(
                events_pb2.UserRegistered(user_id="u"), "u"
            )
        assert wakeups == [1]
        async with db.write() as tx:  # a relay marking rows published
            await tx.execute(sa.update(outbox.outbox).values(published_at_us=1))
        assert wakeups == [1]
        with contextlib.suppress(RuntimeError):
            async with db.write() as tx:  # rolled back: wakes nobody
                await outbox.SqlOutbox(tx, "identity").record(
                    events_pb2.UserRegistered(user_id="v"), "v"
                )
                raise RuntimeError("rolled back")
        assert wakeups == [1]
    finally:
        await db.dispose()
