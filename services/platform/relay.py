"""The outbox relay: publishes committed outbox rows to the bus, then marks them.

The database's commit hook calls :meth:`OutboxRelay.notify` after every commit that
wrote outbox rows (:func:`services.platform.publishing.outbox_publishing` wires it), so
the relay wakes at once; ``idle_poll`` is only the safety net for rows committed by
another process. Each round publishes every stream's rows in one pipelined round trip
(one fsync at ``appendfsync always``). Publish-then-mark makes delivery at-least-once: a
crash between the two republishes the batch, which consumers absorb through their inbox.

Under load, commits come faster than rounds need to: the running relay starts a round at
most every ``round_interval`` seconds (5 ms), so the rows of several commits share one read,
one round trip and one fsync, and an event waits at most that long; the first commit after
a quiet spell is published at once. It marks what it published at most ``mark_delay``
seconds later, one write transaction for every round of that while: a round of one event
costs as much again to mark as to read and publish. Rows published but not yet marked are
remembered by id and skipped, so this process does not send them twice; a crash in between
republishes them, as above. :meth:`OutboxRelay.drain` and :meth:`OutboxRelay.stop` mark
everything before they return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict

import sqlalchemy as sa

from services.platform.bus import Bus, bus_metrics, stream_name
from services.platform.clock import now_us
from services.platform.db import Database, Row
from services.platform.metrics import Metrics
from services.platform.outbox import Envelope, outbox
from services.platform.retry import Backoff
from services.platform.tasks import stop_task

log = logging.getLogger("emporium.relay")

_UNPUBLISHED = (
    sa.select(outbox)
    .where(outbox.c.published_at_us.is_(None))
    .order_by(outbox.c.id)
    .limit(sa.bindparam("limit"))
)
# One prepared statement for every row (executemany): an IN list of a thousand ids would be
# expanded into new SQL on every round, which cost more than the update itself.
_MARK = sa.update(outbox).where(outbox.c.id == sa.bindparam("row_id"))
_BACKLOG = (
    sa.select(sa.func.count(), sa.func.min(outbox.c.occurred_at_us))
    .select_from(outbox)
    .where(outbox.c.published_at_us.is_(None))
)
_PURGE = sa.delete(outbox).where(outbox.c.published_at_us < sa.bindparam("cutoff"))

_BACKLOG_REFRESH_SECONDS = 1.0
#: How long the running relay may hold published rows' marks to write them together.
MARK_DELAY_SECONDS = 0.05
#: The shortest time from one round of the running relay to the next.
ROUND_INTERVAL_SECONDS = 0.005
_PURGE_INTERVAL_SECONDS = 60.0


class OutboxRelay:
    """Moves outbox rows to their streams in id order, in batches, across outages.

    ``retention`` (seconds) is how long published rows stay in the outbox for
    inspection before the relay deletes them; ``None`` keeps them forever.
    """

    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        batch_size: int = 1000,
        idle_poll: float = 1.0,
        metrics: Metrics | None = None,
        retention: float | None = 7 * 24 * 3600.0,
        mark_delay: float = MARK_DELAY_SECONDS,
        round_interval: float = ROUND_INTERVAL_SECONDS,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._db = db
        self._bus = bus
        self._batch_size = batch_size
        self._idle_poll = idle_poll
        self._metrics = bus_metrics(metrics)
        self._retention = retention
        self._mark_delay = mark_delay
        self._round_interval = round_interval
        #: Ids published but not yet marked, and when the oldest of them was published.
        self._unmarked: dict[int, None] = {}
        self._unmarked_since = 0.0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._backlog_at = 0.0
        self._purged_at = time.monotonic()

    def notify(self) -> None:
        """Wake the relay now: rows were just committed. (``Database.on_commit`` calls this
        only after commits that wrote outbox rows, so the relay's own bookkeeping commits
        never wake it.)"""
        self._wake.set()

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Finish the batch in flight (briefly), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._wake.set()
        await stop_task(task, grace=5.0)

    async def drain(self) -> int:
        """Publish everything pending now; returns how many rows were published.

        Raises when the bus or the database fails (the rows stay in the outbox).
        """
        async with self._lock:
            total = await self._publish_pending()
            await self._mark_unmarked()
            return total

    async def _publish_pending(self) -> int:
        total = 0
        while True:
            published = await self._relay_batch()
            total += published
            if published < self._batch_size:
                return total

    async def _run(self) -> None:
        backoff = Backoff(initial=0.05, cap=1.0)
        failing = False
        last_round = -self._round_interval
        while not self._stopping.is_set():
            early = last_round + self._round_interval - time.monotonic()
            if early > 0:  # let the commits of the next few milliseconds join this round
                await asyncio.sleep(early)
            last_round = time.monotonic()
            self._wake.clear()
            try:
                async with self._lock:
                    await self._publish_pending()
                    if self._unmarked and self._mark_due() <= 0:
                        await self._mark_unmarked()
            except Exception as exc:
                if not failing:
                    log.warning(
                        "outbox relay cannot publish; retrying", extra={"reason": repr(exc)}
                    )
                failing = True
                await self._refresh_backlog()
                # Notifications do not shorten this pause: during an outage every commit
                # would otherwise turn into another failed attempt.
                await self._pause(backoff.next())
                continue
            if failing:
                log.info("outbox relay publishing again")
                failing = False
                backoff.reset()
            await self._refresh_backlog()
            await self._purge()
            wait = self._idle_poll if not self._unmarked else max(0.0, self._mark_due())
            # A timer that wakes the relay like a commit does: no task per round.
            timer = asyncio.get_running_loop().call_later(wait, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
        with contextlib.suppress(Exception):  # stopping: what cannot be marked is resent
            async with self._lock:
                await self._mark_unmarked()

    def _mark_due(self) -> float:
        """Seconds until the unmarked rows' marks are due."""
        return self._unmarked_since + self._mark_delay - time.monotonic()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _relay_batch(self) -> int:
        unmarked = self._unmarked
        async with self._db.read() as tx:
            rows = await tx.fetch_all(_UNPUBLISHED, {"limit": self._batch_size + len(unmarked)})
        if unmarked:
            rows = [row for row in rows if row["id"] not in unmarked]
        if not rows:
            return 0
        by_stream: dict[str, list[Envelope]] = defaultdict(list)
        for row in rows:
            by_stream[stream_name(row["stream"])].append(_envelope(row))
        await self._publish(by_stream)
        if not unmarked:
            self._unmarked_since = time.monotonic()
        unmarked.update(dict.fromkeys(row["id"] for row in rows))
        if self._metrics is not None:
            for stream, batch in by_stream.items():
                self._metrics.published.labels(stream).inc(len(batch))
        return len(rows)

    async def _publish(self, batches: dict[str, list[Envelope]]) -> None:
        await self._bus.publish_many(batches)

    async def _mark_unmarked(self) -> None:
        if not self._unmarked:
            return
        now = now_us()
        rows = [{"published_at_us": now, "row_id": i} for i in self._unmarked]
        async with self._db.write() as tx:
            await tx.execute_many(_MARK, rows)
        self._unmarked.clear()

    async def _refresh_backlog(self) -> None:
        if self._metrics is None or time.monotonic() - self._backlog_at < _BACKLOG_REFRESH_SECONDS:
            return
        self._backlog_at = time.monotonic()
        try:
            async with self._db.read() as tx:
                row = await tx.fetch_one(_BACKLOG)
            count, oldest_us = (0, None) if row is None else (row[0], row[1])
        except Exception:
            log.debug("cannot count the outbox backlog", exc_info=True)
            return
        self._metrics.outbox_backlog.set(max(0, (count or 0) - len(self._unmarked)))
        self._metrics.outbox_oldest.track(None if oldest_us is None else int(oldest_us))

    async def _purge(self) -> None:
        if self._retention is None or time.monotonic() - self._purged_at < _PURGE_INTERVAL_SECONDS:
            return
        self._purged_at = time.monotonic()
        cutoff = now_us() - int(self._retention * 1_000_000)
        try:
            async with self._db.write() as tx:
                await tx.execute(_PURGE, {"cutoff": cutoff})
        except Exception:
            log.warning("cannot purge published outbox rows", exc_info=True)


def _envelope(row: Row) -> Envelope:
    return Envelope(
        event_id=row["event_id"],
        event_type=row["event_type"],
        aggregate_id=row["aggregate_id"],
        occurred_at_us=row["occurred_at_us"],
        traceparent=row["traceparent"],
        payload=bytes(row["payload"]),
    )
