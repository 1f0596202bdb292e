"""Stopping a background task: a grace period to finish, then cancellation."""

from __future__ import annotations

import asyncio

import pytest

from services.platform.tasks import stop_task


async def test_a_task_that_finishes_within_the_grace_period_is_not_cancelled() -> None:
    finished = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0.01)
        finished.set()

    await stop_task(asyncio.create_task(work()), grace=1.0)
    assert finished.is_set()


async def test_a_task_still_running_is_cancelled_and_has_unwound_when_stop_returns() -> None:
    unwound = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            unwound.set()

    task = asyncio.create_task(work())
    await asyncio.sleep(0)
    await stop_task(task, grace=0.01)
    assert task.cancelled()
    assert unwound.is_set()


async def test_the_exception_a_task_ended_with_is_raised_and_no_task_is_nothing_to_stop() -> None:
    async def work() -> None:
        raise RuntimeError("the loop failed")

    task = asyncio.create_task(work())
    await asyncio.sleep(0)  # it has run, and failed
    with pytest.raises(RuntimeError, match="the loop failed"):
        await stop_task(task)
    await stop_task(None)
