"""In-process wake-ups for order watchers: a committed change to an order wakes its watchers
at once. Changes committed by another process (a canary instance sharing the database) are
not seen here; watchers also poll, so they notice those within a poll interval.

Arm before reading, wait after: a change committed in between is not missed.

>>> wakeup = notifier.arm(order_id)
>>> ... read the order ...
>>> await notifier.wait(order_id, wakeup, timeout=0.2)
"""

from __future__ import annotations

import asyncio
import contextlib


class Notifier:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}

    def notify(self, order_id: str) -> None:
        for future in self._waiting.pop(order_id, ()):
            if not future.done():
                future.set_result(None)

    def arm(self, order_id: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(order_id, set()).add(future)
        return future

    async def wait(self, order_id: str, future: asyncio.Future[None], timeout: float) -> bool:
        """Waits until ``future`` (from :meth:`arm`) fires or ``timeout``; true if it fired."""
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), timeout)
            return future.done()
        finally:
            self.disarm(order_id, future)

    def disarm(self, order_id: str, future: asyncio.Future[None]) -> None:
        """Forgets a wake-up that is no longer waited for."""
        waiting = self._waiting.get(order_id)
        if waiting is not None:
            waiting.discard(future)
            if not waiting:
                del self._waiting[order_id]
        if not future.done():
            future.cancel()
