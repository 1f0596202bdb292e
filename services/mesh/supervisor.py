"""Keeps the local mesh's processes running, like a Kubernetes ``restartPolicy: Always``.

A child that exits while the mesh runs is started again with the same command and
environment: the first time at once, then after an exponential backoff (with jitter)
while it keeps exiting. Each exit is printed with the child's name, exit code and the
tail of its log; a child that exits ``crash_loop_restarts`` times within
``crash_loop_window`` seconds is reported as crash-looping (and still restarted, at the
longest backoff), and when a restarted service serves again the time it took is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from services.mesh.health import check
from services.mesh.processes import Child, ProcessGroup
from services.platform.retry import backoff_delay


@dataclass(frozen=True)
class RestartPolicy:
    #: Backoff before the second restart in a window, doubling up to ``max_delay``.
    initial_delay: float = 0.5
    max_delay: float = 10.0
    #: This many restarts within ``crash_loop_window`` seconds is a crash loop.
    crash_loop_restarts: int = 5
    crash_loop_window: float = 60.0
    #: How often exits are looked for.
    poll_interval: float = 0.1
    #: Lines of the child's log printed with its exit.
    log_lines: int = 15


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class _History:
    exits: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    exited_at: float = 0.0
    looping: bool = False


class Supervisor:
    """Restarts the children of ``group`` that exit until ``run``'s ``stop`` is set.

    ``health`` maps a child's name to its gRPC target: after a restart, the supervisor
    waits for it to report SERVING and prints how long the service was away.
    """

    def __init__(
        self,
        group: ProcessGroup,
        *,
        health: Mapping[str, str] | None = None,
        policy: RestartPolicy | None = None,
        report: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._group = group
        self._health = dict(health or {})
        self._policy = policy or RestartPolicy()
        self._report = report or _to_stderr
        self._clock = clock
        self._history: dict[str, _History] = {}
        self._watching: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Supervises until ``stop`` is set; then leaves stopping to the group."""
        try:
            while not stop.is_set():
                self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._policy.poll_interval)
        finally:
            for task in list(self._watching):
                task.cancel()

    def tick(self) -> None:
        """One look at every child: note new exits, restart those whose backoff is over."""
        now = self._clock()
        for child in list(self._group.children):
            code = child.process.poll()
            if code is None:
                continue
            history = self._history.setdefault(child.name, _History())
            if history.restart_at is None:
                self._exited(child, code, history, now)
            if history.restart_at is not None and now >= history.restart_at:
                self._restart(child, history, now)

    def _exited(self, child: Child, code: int, history: _History, now: float) -> None:
        policy = self._policy
        while history.exits and now - history.exits[0] > policy.crash_loop_window:
            history.exits.popleft()
        earlier = len(history.exits)
        history.exits.append(now)
        history.exited_at = now
        delay = (
            0.0
            if earlier == 0
            else backoff_delay(earlier - 1, policy.initial_delay, policy.max_delay)
        )
        history.restart_at = now + delay
        tail = "\n".join(f"  | {line}" for line in child.log_tail(policy.log_lines))
        self._report(
            f"{child.name} exited ({describe_exit(code)}); restarting in {delay:.1f}s"
            f" — last lines of {child.log_path}:\n{tail}"
        )
        looping = len(history.exits) >= policy.crash_loop_restarts
        if looping and not history.looping:
            self._report(
                f"{child.name} is crash-looping: {len(history.exits)} exits within"
                f" {policy.crash_loop_window:.0f}s; see {child.log_path}"
            )
        history.looping = looping

    def _restart(self, child: Child, history: _History, now: float) -> None:
        history.restart_at = None
        again = self._group.restart(child)
        self._report(f"{child.name} restarted (pid {again.process.pid})")
        target = self._health.get(child.name)
        if target is not None:
            task = asyncio.create_task(self._until_serving(again, target, history.exited_at))
            self._watching.add(task)
            task.add_done_callback(self._watching.discard)

    async def _until_serving(self, child: Child, target: str, exited_at: float) -> None:
        while child.process.poll() is None:
            if await check(target, timeout=0.5):
                away = self._clock() - exited_at
                self._report(f"{child.name} serving again, {away:.1f}s after it exited")
                return
            await asyncio.sleep(0.1)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
