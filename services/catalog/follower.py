"""Keeps this replica's in-memory catalog current with the other replicas' writes.

Every catalog event (ProductCreated, ProductUpdated, PriceChanged) names the product it
is about; the follower reads the catalog stream (plain ``XREAD``: every replica needs
every event, so no consumer group) and reloads each named product from the database.
Reloading is idempotent and the cache keeps only newer versions, so duplicates, this
replica's own events and replays after a Redis outage are all harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.platform.bus import Bus, decode, stream_name
from services.platform.retry import Backoff
from services.platform.tasks import stop_task

log = logging.getLogger("emporium.catalog.follower")

_BLOCK_MS = 1000


class CatalogFollower:
    """Calls ``refresh(product_id)`` for every event on the catalog stream."""

    def __init__(
        self,
        bus: Bus,
        refresh: Callable[[str], Awaitable[None]],
        reload_all: Callable[[], Awaitable[None]],
    ) -> None:
        self._bus = bus
        self._refresh = refresh
        self._reload_all = reload_all
        self._stream = stream_name("catalog")
        self._task: asyncio.Task[None] | None = None
        self._last = "$"

    async def start(self) -> None:
        """Remembers the stream's end, then reloads everything: no change falls between."""
        try:
            newest: Any = await self._bus.client.xrevrange(self._stream, count=1)
            self._last = _text(newest[0][0]) if newest else "0-0"
        except Exception:
            log.warning("cannot read the catalog stream; following from now", exc_info=True)
        await self._reload_all()
        self._task = asyncio.create_task(self._run(), name="catalog-follower")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        backoff = Backoff(initial=0.05, cap=2.0)
        while True:
            try:
                await self._follow_once()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.debug("catalog follower failed; retrying", exc_info=True)
                await asyncio.sleep(backoff.next())

    async def _follow_once(self) -> None:
        answer: Any = await self._bus.client.xread({self._stream: self._last}, block=_BLOCK_MS)
        for _stream, entries in answer or ():
            for entry_id, fields in entries:
                try:
                    product_id = decode(fields).aggregate_id
                except ValueError:
                    product_id = ""
                if product_id:
                    await self._refresh(product_id)
                self._last = _text(entry_id)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
