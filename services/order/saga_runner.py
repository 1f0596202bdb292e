"""Runs sagas as background tasks: one task per order, bounded in number, resumed on start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from services.order.saga import Saga
from services.platform import auth, deadlines

log = logging.getLogger("emporium.order.saga")


class SagaRunner:
    """Starts, wakes and stops saga tasks.

    A saga that fails unexpectedly (its database is down, a bug) is restarted after a
    pause, as if resumed; sagas are persisted and idempotent, so that is always safe.
    """

    def __init__(
        self,
        saga: Saga,
        unfinished: Callable[[], Awaitable[list[str]]],
        *,
        max_concurrent: int = 100,
        restart_delay: float = 1.0,
    ) -> None:
        self._saga = saga
        self._unfinished = unfinished
        self._slots = asyncio.Semaphore(max_concurrent)
        self._restart_delay = restart_delay
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def start(self, order_id: str, *, resumed: bool = False) -> None:
        """Runs the order's saga unless it is running here already (then wakes it)."""
        if self._stopping:
            return
        if order_id in self._tasks:
            self._saga.poke(order_id)
            return
        task = asyncio.create_task(self._run(order_id, resumed), name=f"saga-{order_id}")
        self._tasks[order_id] = task

    def poke(self, order_id: str) -> None:
        self._saga.poke(order_id)

    def running(self, order_id: str) -> bool:
        return order_id in self._tasks

    async def _run(self, order_id: str, resumed: bool) -> None:
        # The task inherited the context of the RPC that started it: keep its trace (one
        # order, one trace) but not its deadline or caller; the saga outlives that call.
        deadlines.set_remaining(None)
        auth.set_caller(None)
        try:
            while not self._stopping:
                try:
                    async with self._slots:
                        await self._saga.run(order_id, resumed=resumed)
                    return
                except Exception:
                    log.exception("saga crashed; restarting it", extra={"order_id": order_id})
                    resumed = True
                    await asyncio.sleep(self._restart_delay)
        finally:
            self._tasks.pop(order_id, None)

    async def resume_all(self) -> int:
        """Starts every unfinished saga (on service start); returns how many."""
        order_ids = await self._unfinished()
        for order_id in order_ids:
            self.start(order_id, resumed=True)
        if order_ids:
            log.info("resuming sagas", extra={"count": len(order_ids)})
        return len(order_ids)

    async def idle(self) -> None:
        """Waits until no saga runs (tests, graceful drains)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def stop(self) -> None:
        """Interrupts every saga where it is; they resume from their last saved step."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
