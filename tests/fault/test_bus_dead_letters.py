"""Dead letters through the documented command: list, replay in order, discard.

The consumer runs here; ``python -m services <service> dead-letters ...`` runs as a real
subprocess against the same Redis, as an operator would run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from google.protobuf.wrappers_pb2 import StringValue

from services.platform import outbox
from services.platform.bus import Bus, blocked_aggregates_key, dead_letter_stream, stream_name
from services.platform.consumer import Consumer
from services.platform.db import Database, Transaction
from services.platform.embedded_redis import EmbeddedRedis
from services.platform.outbox import Envelope
from tests import busapp
from tests.support.redis import unique


async def dead_letters_command(redis_url: str, group: str, *args: str) -> tuple[int, str, str]:
    """Runs the command for service ``fulfillment`` (group ``group``); (status, out, err)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        "fulfillment",
        "dead-letters",
        *args,
        "--group",
        group,
        cwd=busapp.REPO_ROOT,
        env={**os.environ, "REDIS_URL": redis_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def listed(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


class Switchable:
    """A handler that fails for values starting with ``bad`` until ``fixed``; it records
    every effect it commits, in order (the ``effects`` table's ids)."""

    def __init__(self, group: str) -> None:
        self.fixed = False
        self._effect = busapp.effect_handler(group)

    async def __call__(self, tx: Transaction, envelope: Envelope) -> None:
        if not self.fixed and StringValue.FromString(envelope.payload).value.startswith("bad"):
            raise ValueError("no rule for this value")
        await self._effect(tx, envelope)


async def applied_values(db: Database) -> list[str]:
    return await busapp.effect_values(db)


async def publish(bus: Bus, stream: str, values: list[tuple[str, str]]) -> list[str]:
    """Publishes (aggregate, value) events in order; their event ids."""
    items = [outbox.envelope(StringValue(value=value), aggregate) for aggregate, value in values]
    await bus.publish(stream, items)
    return [item.event_id for item in items]


async def test_an_aggregates_later_events_wait_behind_its_dead_letter_and_replay_in_order(
    db: Database, bus: Bus, embedded_redis: EmbeddedRedis
) -> None:
    context, group = unique("ctx"), unique("group")
    stream = stream_name(context)
    handler = Switchable(group)
    consumer = busapp.consumer(
        db,
        bus,
        group,
        stream,
        handler,
        max_deliveries=2,
        retry_backoff=0.02,
        block_ms=50,
    )
    await consumer.start()
    try:
        await publish(bus, stream, [("A", "bad-a1"), ("B", "b1")])
        await busapp.eventually(lambda: _dead(bus, group, 1))
        await publish(bus, stream, [("A", "a2"), ("B", "b2"), ("A", "a3")])
        await busapp.eventually(lambda: _dead(bus, group, 3))
        await busapp.eventually(lambda: _applied(db, ["b1", "b2"]))

        status, out, _ = await dead_letters_command(embedded_redis.url, group, "list", "--json")
        assert status == 0
        letters = listed(out)
        assert [d["aggregate_id"] for d in letters] == ["A", "A", "A"]
        assert letters[0]["reason"] == "ValueError: no rule for this value"
        assert letters[0]["deliveries"] == 2
        assert str(letters[1]["reason"]).startswith("held behind a dead letter of A")

        # The later events cannot jump the queue: replaying one alone is refused.
        status, _, err = await dead_letters_command(
            embedded_redis.url, group, "replay", "--id", str(letters[1]["id"])
        )
        assert status == 1
        assert "held behind" in err

        handler.fixed = True  # the fix is deployed
        status, out, _ = await dead_letters_command(embedded_redis.url, group, "replay")
        assert status == 0
        assert "3 dead letter(s) replayed" in out
        await busapp.eventually(lambda: _applied(db, ["b1", "b2", "bad-a1", "a2", "a3"]))
        await publish(bus, stream, [("A", "a4")])  # the aggregate flows again
        await busapp.eventually(lambda: _applied(db, ["b1", "b2", "bad-a1", "a2", "a3", "a4"]))
        # Replaying again finds nothing: each event was applied once.
        status, out, _ = await dead_letters_command(embedded_redis.url, group, "replay")
        assert (status, "0 dead letter(s) replayed" in out) == (0, True)
    finally:
        await consumer.stop()

    assert await applied_values(db) == ["b1", "b2", "bad-a1", "a2", "a3", "a4"]
    assert await bus.client.xlen(dead_letter_stream(group)) == 0
    assert await bus.client.scard(blocked_aggregates_key(group)) == 0
    assert int((await bus.client.xpending(stream, group))["pending"]) == 0


async def test_a_replayed_event_already_applied_is_not_applied_again(
    db: Database, bus: Bus, embedded_redis: EmbeddedRedis
) -> None:
    context, group = unique("ctx"), unique("group")
    stream = stream_name(context)
    [event_id] = await publish(bus, stream, [("A", "once")])
    consumer = Consumer(
        db, bus, group=group, streams=[stream], handlers={busapp.EVENT_TYPE: Switchable(group)}
    )
    await consumer.start()
    try:
        await busapp.eventually(lambda: _applied(db, ["once"]))
        # A copy of the applied event lands in the dead letters (as a member that
        # committed and then died past max_deliveries would leave it), and is replayed.
        [(entry_id, fields)] = await bus.client.xrange(stream)
        await bus.client.xadd(
            dead_letter_stream(group),
            {
                **fields,
                b"dead_reason": b"test",
                b"dead_source_stream": stream.encode(),
                b"dead_source_id": entry_id,
            },
        )
        status, out, _ = await dead_letters_command(embedded_redis.url, group, "replay")
        assert status == 0
        assert "1 dead letter(s) replayed" in out
        await busapp.eventually(lambda: _all_acked(bus, stream, group, 2))
    finally:
        await consumer.stop()

    assert await busapp.effect_event_ids(db) == [event_id]


async def test_discard_deletes_a_dead_letter_for_good_and_unblocks_its_aggregate(
    db: Database, bus: Bus, embedded_redis: EmbeddedRedis
) -> None:
    context, group = unique("ctx"), unique("group")
    stream = stream_name(context)
    consumer = busapp.consumer(
        db,
        bus,
        group,
        stream,
        Switchable(group),
        max_deliveries=1,
        block_ms=50,
    )
    await consumer.start()
    try:
        await publish(bus, stream, [("A", "bad-forever")])
        await busapp.eventually(lambda: _dead(bus, group, 1))
        status, out, _ = await dead_letters_command(embedded_redis.url, group, "discard")
        assert status == 1  # discard without --id would delete everything: refused
        _, out, _ = await dead_letters_command(embedded_redis.url, group, "list", "--json")
        [letter] = listed(out)
        status, out, _ = await dead_letters_command(
            embedded_redis.url, group, "discard", "--id", str(letter["id"])
        )
        assert status == 0
        assert "1 dead letter(s) discarded" in out
        await publish(bus, stream, [("A", "after")])
        await busapp.eventually(lambda: _applied(db, ["after"]))
    finally:
        await consumer.stop()

    assert await bus.client.xlen(dead_letter_stream(group)) == 0


async def _dead(bus: Bus, group: str, count: int) -> bool:
    return int(await bus.client.xlen(dead_letter_stream(group))) >= count


async def _applied(db: Database, values: list[str]) -> bool:
    return await applied_values(db) == values


async def _all_acked(bus: Bus, stream: str, group: str, entries: int) -> bool:
    """The stream holds ``entries`` entries, the group has read the last, none pending."""
    [(last, _)] = await bus.client.xrevrange(stream, count=1)
    [info] = [g for g in await bus.client.xinfo_groups(stream) if g["name"].decode() == group]
    pending = int((await bus.client.xpending(stream, group))["pending"])
    length = int(await bus.client.xlen(stream))
    return bool(info["last-delivered-id"] == last and pending == 0 and length == entries)
