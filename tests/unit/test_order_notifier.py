"""The order watchers' notifier: commits here reach the order's feeds at once with their
events; changes committed by another instance are found by one shared poll of every watched
order's version, and tell the watcher to read."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from services.order.domain import OrderCancelled
from services.order.notifier import Notifier

# Two events of one order's stream (what they say does not matter here).
FIRST = OrderCancelled("o-1", "asked once", 10)
SECOND = OrderCancelled("o-1", "asked twice", 20)


class Stored:
    """The versions "in the database", and every poll made of them."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.polls: list[list[str]] = []

    async def __call__(self, order_ids: Sequence[str]) -> Mapping[str, int]:
        self.polls.append(sorted(order_ids))
        return {o: self.versions[o] for o in order_ids if o in self.versions}


async def test_a_commit_here_reaches_the_orders_feeds_with_its_event() -> None:
    notifier = Notifier()
    with (
        notifier.watch("o-1") as first,
        notifier.watch("o-1") as second,
        notifier.watch("o-2") as other,
    ):
        first.seen = second.seen = other.seen = 1
        notifier.notify("o-1", 2, FIRST)
        assert await first.next(0) == [(2, FIRST)]
        assert await second.next(0) == [(2, FIRST)]
        assert await other.next(0) is None  # nothing for o-2: its timeout passed


async def test_a_commit_between_subscribing_and_reading_is_kept_and_an_old_one_skipped() -> None:
    notifier = Notifier()
    with notifier.watch("o-1") as feed:
        notifier.notify("o-1", 2, FIRST)  # committed before the watcher's read …
        notifier.notify("o-1", 3, SECOND)  # … and after it
        feed.seen = 2  # the read saw version 2
        assert await feed.next(1.0) == [(3, SECOND)]


async def test_a_gap_in_what_was_pushed_says_read() -> None:
    notifier = Notifier()
    with notifier.watch("o-1") as feed:
        feed.seen = 1
        notifier.notify("o-1", 3, SECOND)  # version 2 was committed elsewhere
        assert await feed.next(1.0) is None


async def test_a_feed_waits_for_the_push() -> None:
    notifier = Notifier()
    with notifier.watch("o-1") as feed:
        feed.seen = 1
        waiting = asyncio.ensure_future(feed.next(5.0))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()
        notifier.notify("o-1", 2, FIRST)
        async with asyncio.timeout(1):
            assert await waiting == [(2, FIRST)]
    assert not notifier._feeds  # the block's end unsubscribed


async def test_one_poll_serves_every_watcher_and_tells_only_those_behind() -> None:
    stored = Stored()
    stored.versions = {"o-1": 1, "o-2": 1}
    notifier = Notifier(interval=0.01)
    notifier.poll(stored)
    with (
        notifier.watch("o-1") as behind,
        notifier.watch("o-1") as pushed,
        notifier.watch("o-2") as other,
    ):
        behind.seen = pushed.seen = other.seen = 1
        await asyncio.sleep(0.05)
        assert stored.polls
        # One query for every watched order, not one per watcher.
        assert all(ids == ["o-1", "o-2"] for ids in stored.polls)

        stored.versions["o-1"] = 2
        pushed.push(2, FIRST)  # this one was handed version 2 already
        assert await behind.next(1.0) is None  # told to read
        assert await pushed.next(1.0) == [(2, FIRST)]
        assert await other.next(0.05) is None  # only its timeout
    await asyncio.sleep(0.05)
    quiet = len(stored.polls)
    await asyncio.sleep(0.05)
    assert len(stored.polls) == quiet  # nobody watches: nobody polls
    await notifier.close()


async def test_a_failing_poll_is_retried_at_the_next_interval() -> None:
    calls = 0

    async def flaky(order_ids: Sequence[str]) -> Mapping[str, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database is away")
        return {"o-1": 5}

    notifier = Notifier(interval=0.01)
    notifier.poll(flaky)
    with notifier.watch("o-1") as feed:
        feed.seen = 4
        assert await feed.next(1.0) is None
    assert calls >= 2
    await notifier.close()
