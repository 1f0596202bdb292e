"""Wake-ups for order watchers: at once for a change committed in this process
(:meth:`Notifier.notify`, fired by the commit), and within one poll interval for a change
committed by another instance sharing the database (a replica that holds the saga). The
poll is one query per interval for every watched order together, not one per watcher, and
runs only while someone watches.

Arm with the version you have, then read, then wait: a change committed in between is not
missed.

>>> wakeup = notifier.arm(order_id, view.version)
>>> ... read the order's events after view.version ...
>>> await notifier.wait(order_id, wakeup, timeout=30)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from services.platform.tasks import stop_task

log = logging.getLogger("emporium.order")

#: The stored version of each of the given orders (absent: unknown).
Versions = Callable[[Sequence[str]], Awaitable[Mapping[str, int]]]

_CHUNK = 500


class Notifier:
    def __init__(self, versions: Versions | None = None, *, interval: float = 0.2) -> None:
        self._versions = versions
        self._interval = interval
        #: Per order: each armed wake-up and the version its watcher has seen.
        self._waiting: dict[str, dict[asyncio.Future[None], int]] = {}
        self._poller: asyncio.Task[None] | None = None

    def poll(self, versions: Versions) -> None:
        """Also wakes watchers for changes committed elsewhere, seen through ``versions``."""
        self._versions = versions

    def notify(self, order_id: str) -> None:
        for future in self._waiting.pop(order_id, {}):
            if not future.done():
                future.set_result(None)

    def arm(self, order_id: str, version: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(order_id, {})[future] = version
        if self._versions is not None and self._poller is None:
            self._poller = asyncio.create_task(self._poll(self._versions))
        return future

    async def wait(
        self, order_id: str, future: asyncio.Future[None], timeout: float | None
    ) -> bool:
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
            waiting.pop(future, None)
            if not waiting:
                del self._waiting[order_id]
        if not future.done():
            future.cancel()

    async def close(self) -> None:
        poller, self._poller = self._poller, None
        await stop_task(poller)

    async def _poll(self, versions: Versions) -> None:
        """While anyone watches: every interval, the stored versions of all watched orders
        in one query (per 500), waking the watchers that are behind."""
        try:
            while self._waiting:
                await asyncio.sleep(self._interval)
                watched = list(self._waiting)
                for start in range(0, len(watched), _CHUNK):
                    try:
                        current = await versions(watched[start : start + _CHUNK])
                    except Exception:
                        log.debug("could not poll the watched orders", exc_info=True)
                        break
                    self._wake_behind(current)
        finally:
            if self._poller is asyncio.current_task():
                self._poller = None

    def _wake_behind(self, current: Mapping[str, int]) -> None:
        for order_id, version in current.items():
            for future, seen in list(self._waiting.get(order_id, {}).items()):
                if version > seen and not future.done():
                    future.set_result(None)
