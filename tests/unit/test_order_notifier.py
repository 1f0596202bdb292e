"""The order watchers' notifier: commits here wake at once; changes committed by another
instance are found by one shared poll of every watched order's version."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from services.order.notifier import Notifier


class Stored:
    """The versions "in the database", and every poll made of them."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.polls: list[list[str]] = []

    async def __call__(self, order_ids: Sequence[str]) -> Mapping[str, int]:
        self.polls.append(sorted(order_ids))
        return {o: self.versions[o] for o in order_ids if o in self.versions}


async def test_a_commit_here_wakes_the_orders_watchers_at_once() -> None:
    notifier = Notifier()
    first, second = notifier.arm("o-1", 1), notifier.arm("o-1", 1)
    other = notifier.arm("o-2", 1)
    notifier.notify("o-1")
    assert await notifier.wait("o-1", first, 0)
    assert await notifier.wait("o-1", second, 0)
    assert not await notifier.wait("o-2", other, 0)


async def test_one_poll_serves_every_watcher_and_wakes_only_those_behind() -> None:
    stored = Stored()
    stored.versions = {"o-1": 1, "o-2": 1}
    notifier = Notifier(interval=0.01)
    notifier.poll(stored)
    watchers = [notifier.arm("o-1", 1) for _ in range(20)] + [notifier.arm("o-2", 1)]
    await asyncio.sleep(0.05)
    assert stored.polls
    # One query for every watched order, not one per watcher.
    assert all(ids == ["o-1", "o-2"] for ids in stored.polls)
    assert not any(w.done() for w in watchers)  # nothing changed yet

    stored.versions["o-1"] = 2  # another instance appended to o-1
    woken = await asyncio.gather(*(notifier.wait("o-1", w, 1.0) for w in watchers[:20]))
    assert all(woken)
    assert not watchers[20].done()
    notifier.disarm("o-2", watchers[20])
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
    assert await notifier.wait("o-1", notifier.arm("o-1", 4), 1.0)
    assert calls >= 2
    await notifier.close()
