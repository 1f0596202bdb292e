"""Stopping a background task (a relay, a consumer, a renewer, a sampler)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None, *, grace: float = 0.0) -> None:
    """Gives ``task`` up to ``grace`` seconds to finish on its own, then cancels it and
    waits until it has unwound. An exception the task ended with is raised here; its
    cancellation is not."""
    if task is None:
        return
    if grace > 0:
        await asyncio.wait({task}, timeout=grace)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
