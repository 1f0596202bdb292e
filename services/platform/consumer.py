"""Idempotent consumers: a consumer group per consuming context, over Redis Streams.

The loop of one group member: read, retry failed handlers with backoff (later events of
their aggregate waiting behind them), reclaim a dead member's entries, and resume its own
after the database or Redis failed (no delivery counted). Applying with the inbox is
:mod:`services.platform.bus.applying`, dead letters :mod:`services.platform.bus.dead_letters`.
See docs/messaging.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from opentelemetry import trace

from services.platform.bus import (
    MAX_BLOCK_MS,
    Bus,
    DeadLetters,
    Delivery,
    GroupMember,
    MalformedEntry,
    bus_metrics,
    decode,
    is_transient,
)
from services.platform.bus.applying import (
    Applier,
    Handler,
    Outcome,
    Ready,
    key_of,
)
from services.platform.bus.dead_letters import aggregate_key
from services.platform.bus.metrics import ConsumerReport
from services.platform.bus.ordering import AggregateQueue, Retries
from services.platform.db import Database
from services.platform.metrics import Metrics
from services.platform.outbox import Envelope
from services.platform.retry import Backoff, backoff_delay
from services.platform.tasks import stop_task

__all__ = ["Consumer", "Handler"]

log = logging.getLogger("emporium.consumer")

_STALE_MEMBER_IDLE_MS = 3600 * 1000
_REASON_LIMIT = 2000


class Consumer:
    """Reads ``streams`` as consumer ``consumer_name`` of ``group`` and applies handlers.

    ``handlers`` are keyed by full proto type name (``Envelope.event_type``) and run
    inside the consumer's transaction (``db.write()``; ``uow.event_handler`` makes one
    from an effect on a service's repositories); events of other types are acknowledged and
    recorded as processed. ``after_commit`` runs after a batch's transactions commit and
    before its entries are acknowledged. The default consumer name is unique per process
    start, so a restarted process's leftovers are reclaimed like any dead consumer's.

    Tuning: ``batch`` entries per read, applied in transactions of ``transaction_batch``;
    a failed handler is retried after ``retry_backoff`` seconds, doubling up to
    ``retry_backoff_cap``; ``block_ms`` bounds a blocking read (and so ``stop``).
    ``transient`` says which errors are the infrastructure's (never a delivery).
    """

    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        group: str,
        streams: Sequence[str],
        handlers: Mapping[str, Handler],
        consumer_name: str | None = None,
        max_deliveries: int = 5,
        claim_idle_ms: int = 30_000,
        block_ms: int = 1000,
        batch: int = 500,
        metrics: Metrics | None = None,
        tracer: trace.Tracer | None = None,
        after_commit: Callable[[], None] | None = None,
        retry_backoff: float = 0.1,
        retry_backoff_cap: float = 5.0,
        transaction_batch: int = 50,
        transient: Callable[[BaseException], bool] = is_transient,
    ) -> None:
        if not streams:
            raise ValueError("a consumer needs at least one stream")
        if max_deliveries < 1 or batch < 1 or claim_idle_ms < 1:
            raise ValueError("max_deliveries, batch and claim_idle_ms must be positive")
        self.db = db
        self.bus = bus
        self.group = group
        self.streams = tuple(streams)
        self.name = consumer_name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.max_deliveries = max_deliveries
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = max(1, min(block_ms, MAX_BLOCK_MS))
        self.batch = batch
        self.transaction_batch = max(1, transaction_batch)
        self._member = GroupMember(bus, group, self.name, self.streams)
        self._dead = DeadLetters(bus, group)
        self._applier = Applier(
            db,
            group,
            handlers,
            tracer,
            lambda exc: transient(exc) or db.is_transient(exc),
        )
        self._report = ConsumerReport(bus_metrics(metrics), group)
        self._after_commit = after_commit
        self._retry_backoff = (retry_backoff, retry_backoff_cap)
        self._retries = Retries()
        self._order = AggregateQueue()  # later events of an aggregate wait behind a failure
        self._parked_now: set[str] = set()  # aggregates dead-lettered in this round
        self._reclaim_every = min(max(claim_idle_ms / 2000, 0.05), 10.0)
        self._next_reclaim = 0.0
        self._stopping = False
        self._interruptible = False
        self._task: asyncio.Task[None] | None = None

    @property
    def handlers(self) -> dict[str, Handler]:
        return self._applier.handlers

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group}")

    async def stop(self) -> None:
        """Finish the batch in hand, then stop; a blocking read is simply abandoned."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        await stop_task(task, grace=0.0 if self._interruptible else 10.0)
        with contextlib.suppress(Exception):  # else they are redelivered, and skipped
            await self._member.flush_acks()

    # The loop -----------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(initial=0.05, cap=2.0)
        ready = failing = False
        while not self._stopping:
            try:
                if not ready:
                    await self._member.ensure_groups()
                    await self._recover_own_pending()
                    ready = True
                await self._retry_due()
                await self._reclaim_if_due()
                fresh = await self._read_new()
                await self._process(fresh, none_blocked=not self._member.probe_found)
                await self._report.refresh(self._member)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis away, a group deleted, the database locked or down: no delivery
                # is counted; start over from the groups and this member's own pending
                # entries once they answer again.
                ready = False
                self._report.transient(exc, first=not failing)
                failing = True
                self._interruptible = True
                try:
                    await asyncio.sleep(backoff.next())
                finally:
                    self._interruptible = False
                continue
            if failing:
                log.info("consumer running again", extra={"group": self.group})
                failing = False
                backoff.reset()

    async def _read_new(self) -> list[Delivery]:
        if self._stopping:
            return []
        block = min(self.block_ms, int((self._next_reclaim - time.monotonic()) * 1000))
        due = self._retries.seconds_to_next()
        if due is not None:
            block = min(block, int(due * 1000))
        self._interruptible = True
        try:
            return await self._member.read_new(self.batch, block, probe=self._dead.blocked_key)
        finally:
            self._interruptible = False

    def _busy(self, stream: str, entry_id: str) -> bool:
        """Whether this member holds the entry in memory (a retry, or waiting behind one)."""
        return (stream, entry_id) in self._retries or self._order.holds(stream, entry_id)

    async def _recover_own_pending(self) -> None:
        """Resume what this member read but never acknowledged (after an outage)."""
        await self._member.flush_acks()
        for stream in self.streams:
            after: str | None = None
            for _ in range(1000):  # bounded: at most 1000 batches per recovery
                pending = await self._member.own_pending(stream, self.batch, after)
                mine = [p for p in pending if not self._busy(stream, self._member.pending_id(p))]
                await self._process(await self._member.take_back(stream, mine))
                if len(pending) < self.batch:
                    break
                after = self._member.pending_id(pending[-1])

    async def _retry_due(self) -> None:
        for (stream, min_idle), ids in self._retries.take_due().items():
            # A min idle time: if another consumer took the entry meanwhile, leave it be.
            claimed = await self._member.claim(stream, ids, min_idle)
            taken = {d.entry_id for d in claimed}
            released = [d for i in ids if i not in taken for d in self._order.release((stream, i))]
            await self._process(claimed + released)

    async def _reclaim_if_due(self) -> None:
        if time.monotonic() < self._next_reclaim:
            return
        self._next_reclaim = time.monotonic() + self._reclaim_every
        for stream in self.streams:
            claimed = await self._member.autoclaim(stream, self.claim_idle_ms, self.batch)
            if claimed:
                log.info(
                    "reclaimed idle entries",
                    extra={"group": self.group, "stream": stream, "count": len(claimed)},
                )
                await self._process(claimed)
        await self._member.forget_stale_members(_STALE_MEMBER_IDLE_MS)

    # Handling -----------------------------------------------------------------

    async def _process(self, entries: list[Delivery], *, none_blocked: bool = False) -> None:
        """Applies ``entries``, acks what committed; re-raises an infrastructure failure."""
        done: dict[str, list[str]] = defaultdict(list)
        released: list[Delivery] = []
        error: BaseException | None = None
        committed = False
        self._parked_now.clear()
        ready = await self._admit(entries, done, none_blocked)
        for start in range(0, len(ready), self.transaction_batch):
            # A failure in one chunk holds back its aggregate's later events in the next.
            candidates = ready[start : start + self.transaction_batch]
            chunk = [item for item in candidates if not await self._behind(*item)]
            outcomes, error = await self._applier.apply(chunk) if chunk else ([], None)
            for (entry, envelope), outcome in zip(chunk, outcomes, strict=False):
                released += await self._settle(entry, envelope, outcome, done)
                committed = committed or outcome == "handled"
            if error is not None:
                break
        if committed and self._after_commit is not None:
            self._after_commit()
        self._member.ack_later(done)  # with the next read: one round trip, one fsync
        if error is not None:
            raise error
        if released:
            await self._process(released)

    async def _admit(
        self, entries: list[Delivery], done: dict[str, list[str]], none_blocked: bool
    ) -> list[Ready]:
        """The entries to apply now: decoded, not given up on, not waiting behind another."""
        ready: list[Ready] = []
        for entry in entries:
            self._retries.forget(entry)
            if not entry.fields:  # deleted from the stream (trimmed) while pending
                done[entry.stream].append(entry.entry_id)
                continue
            try:
                envelope = decode(entry.fields)
            except MalformedEntry as exc:
                await self._park(entry, "?", "", f"malformed entry: {exc}")
                continue
            if entry.deliveries > self.max_deliveries:
                # Delivered that often without an ack: it kills or hangs its consumers.
                reason = f"delivered {entry.deliveries} times without being acknowledged"
                await self._park(entry, envelope.event_type, envelope.aggregate_id, reason)
                continue
            ready.append((entry, envelope))
        # One look at the blocked aggregates per round (one round trip).
        # (``none_blocked``: the read found no blocked aggregate at all, in the same trip.)
        keys = [] if none_blocked else sorted({key_of(*item) for item in ready})
        blocked = await self._dead.blocked(keys)
        for entry, envelope in [item for item in ready if key_of(*item) in blocked]:
            reason = f"held behind a dead letter of {envelope.aggregate_id} on {entry.stream}"
            await self._park(entry, envelope.event_type, envelope.aggregate_id, reason)
        return [item for item in ready if key_of(*item) not in blocked]

    async def _behind(self, entry: Delivery, envelope: Envelope) -> bool:
        """Whether the entry must wait (held) or was parked behind its aggregate's failure
        earlier in this round."""
        key = key_of(entry, envelope)
        if key in self._parked_now:
            reason = f"held behind a dead letter of {envelope.aggregate_id} on {entry.stream}"
            await self._park(entry, envelope.event_type, envelope.aggregate_id, reason)
            return True
        return self._order.must_wait(key, entry)

    async def _settle(
        self, entry: Delivery, envelope: Envelope, outcome: Outcome, done: dict[str, list[str]]
    ) -> list[Delivery]:
        """Records one outcome; returns the entries it releases from waiting."""
        key = key_of(entry, envelope)
        if outcome == "deferred":
            if self._order.waiting(key):
                self._order.hold(key, entry)
                return []
            return [entry]  # what it waited behind was dead-lettered: parked in turn
        if isinstance(outcome, Exception):
            if await self._failed(entry, envelope, outcome):
                self._order.wait_on(key, entry)
                return []
            return self._order.release((entry.stream, entry.entry_id))
        done[entry.stream].append(entry.entry_id)
        self._report.processed(envelope, str(outcome))
        return self._order.release((entry.stream, entry.entry_id))

    async def _failed(self, entry: Delivery, envelope: Envelope, exc: Exception) -> bool:
        """Counts a handler failure; True when the entry will be retried, False when parked."""
        reason = f"{type(exc).__name__}: {exc}"
        self._report.failed(envelope, entry.deliveries, reason)
        if entry.deliveries >= self.max_deliveries:
            await self._park(entry, envelope.event_type, envelope.aggregate_id, reason)
            return False
        self._retries.schedule(entry, backoff_delay(entry.deliveries - 1, *self._retry_backoff))
        return True

    async def _park(self, entry: Delivery, event_type: str, aggregate_id: str, reason: str) -> None:
        """Dead-letter the entry, with why (and block its aggregate); acks it."""
        reason = reason[:_REASON_LIMIT]
        await self._dead.park(entry, event_type, aggregate_id, reason)
        if aggregate_id:
            self._parked_now.add(aggregate_key(entry.stream, aggregate_id))
        self._report.dead_lettered(entry, event_type, reason)
