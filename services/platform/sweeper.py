"""A background task that ends what expired: reservations (inventory), holds (payment)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from services.platform.tasks import stop_task

log = logging.getLogger("emporium.sweeper")

#: Items expired per pass; a full pass is followed by another one at once.
BATCH = 100


class Sweeper:
    """Calls ``sweep(limit)`` every ``interval`` seconds until stopped.

    ``sweep`` returns how many items were due; a full batch means there may be more, so
    the next pass starts without waiting. Errors (a database restart, say) are logged and
    the next pass tries again. ``name`` names the task and the log lines.
    """

    def __init__(
        self, sweep: Callable[[int], Awaitable[int]], interval: float, name: str = "sweeper"
    ) -> None:
        self._sweep = sweep
        self._interval = interval
        self._name = name
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self, grace: float = 5.0) -> None:
        """Lets the current pass finish (up to ``grace`` seconds), then ends the task."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        await stop_task(task, grace=grace)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            due = 0
            try:
                due = await self._sweep(BATCH)
            except Exception:
                log.exception("sweep failed", extra={"sweeper": self._name})
            if due >= BATCH:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
