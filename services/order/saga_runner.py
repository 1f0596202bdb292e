"""Runs the sagas this instance holds as background tasks, and tends their leases.

One task per held saga, bounded in number. A tending loop renews the leases of every held
saga in one statement per tick, stops runs whose lease was lost, and adopts sagas nobody
holds (a crashed or drained instance's) while there are free slots. On start the loop's
first tick is the resume: only expired or released leases are adopted, never the sagas of
a live instance. ``stop`` drains: no new steps, in-flight calls get ``drain_seconds`` to
finish, then the leases are released for another instance to adopt at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.order.ports import LeaseLost, Leases
from services.order.saga import Halted, Saga, SagaState
from services.platform import auth, deadlines
from services.platform.tasks import stop_task

log = logging.getLogger("emporium.order.saga")


class SagaRunner:
    """Starts, wakes and stops saga tasks; renews, adopts and releases their leases.

    A saga that fails unexpectedly (its database is down, a bug) is restarted after a
    pause, as if resumed; sagas are persisted and idempotent, so that is always safe. A
    run that finds its lease lost stops for good: another instance continues the saga.
    """

    def __init__(
        self,
        saga: Saga,
        leases: Leases,
        *,
        lease_seconds: float = 10.0,
        max_concurrent: int = 100,
        restart_delay: float = 1.0,
        drain_seconds: float = 5.0,
    ) -> None:
        self._saga = saga
        self._leases = leases
        self._max = max_concurrent
        self._slots = asyncio.Semaphore(max_concurrent)
        self._restart_delay = restart_delay
        self._drain_seconds = drain_seconds
        #: A lease is renewed four times per period: three ticks may fail before it lapses.
        self.tick_seconds = lease_seconds / 4
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._tending: asyncio.Task[None] | None = None
        self._stopping = False

    def start(
        self, order_id: str, *, resumed: bool = False, state: SagaState | None = None
    ) -> None:
        """Runs a saga this instance holds unless it runs here already (then wakes it);
        ``state`` is the saga as just stored (a new one), so its first run need not load it."""
        if self._stopping:
            return
        if order_id in self._tasks:
            self._saga.poke(order_id)
            return
        run = self._run(order_id, resumed, state)
        task = asyncio.create_task(run, name=f"saga-{order_id}")
        self._tasks[order_id] = task

    def poke(self, order_id: str) -> None:
        self._saga.poke(order_id)

    def running(self, order_id: str) -> bool:
        return order_id in self._tasks

    @property
    def held(self) -> set[str]:
        return set(self._tasks)

    async def _run(self, order_id: str, resumed: bool, state: SagaState | None) -> None:
        # The task inherited the context of the RPC that started it: keep its trace (one
        # order, one trace) but not its deadline or caller; the saga outlives that call.
        deadlines.set_remaining(None)
        auth.set_caller(None)
        try:
            while not self._stopping:
                try:
                    async with self._slots:
                        await self._saga.run(order_id, resumed=resumed, state=state)
                    return
                except Halted:
                    return
                except LeaseLost:
                    log.warning("saga lease lost; stopping", extra={"order_id": order_id})
                    return
                except Exception:
                    log.exception("saga crashed; restarting it", extra={"order_id": order_id})
                    resumed, state = True, None
                    await asyncio.sleep(self._restart_delay)
        finally:
            self._tasks.pop(order_id, None)

    async def begin(self) -> None:
        """Resumes what nobody holds (on service start), then tends leases every tick."""
        await self.tend()
        self._tending = asyncio.create_task(self._tend_forever(), name="saga-leases")

    async def tend(self) -> int:
        """One tick: renews held leases, stops runs that lost theirs, adopts free sagas;
        returns how many were adopted."""
        held = self.held
        if held:
            kept = await self._leases.renew(held)
            for order_id in held - kept:
                task = self._tasks.get(order_id)
                if task is not None:
                    log.warning("saga lease lost; stopping", extra={"order_id": order_id})
                    task.cancel()
        if self._stopping:
            return 0
        adopted = await self._leases.adopt(self._max - len(self._tasks))
        for order_id in adopted:
            self.start(order_id, resumed=True)
        if adopted:
            log.info("adopted sagas", extra={"count": len(adopted)})
        return len(adopted)

    async def _tend_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.tick_seconds)
            try:
                await self.tend()
            except Exception:
                log.exception("could not tend saga leases; retrying next tick")

    async def stop(self) -> None:
        """Drains: starts no more steps, lets calls in flight finish (at most
        ``drain_seconds``), interrupts what is left, then releases every lease held."""
        self._stopping = True
        await stop_task(self._tending)
        held = self.held
        self._saga.halt()
        tasks = list(self._tasks.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._drain_seconds)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            await self._leases.release(held)
        except Exception:
            log.exception("could not release saga leases; they expire instead")
        if held:
            log.info("released saga leases", extra={"count": len(held)})
