"""Processes the benchmark runs: core pinning, CPU time and resident memory.

On a machine with two or more cores the servers under test get core 0 and the load
generators the last core (:class:`Layout`); every thread of a process is pinned, since
``sched_setaffinity`` applies to one thread and threads started earlier keep their mask.
CPU time comes from ``/proc/<pid>/stat`` (all threads), memory from psutil.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

_TICKS = os.sysconf("SC_CLK_TCK")


def available_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


@dataclass(frozen=True, slots=True)
class Layout:
    """Which cores run the system under test and which run the load generators."""

    servers: tuple[int, ...]
    generators: tuple[int, ...]

    @property
    def pinned(self) -> bool:
        return set(self.servers).isdisjoint(self.generators)

    @classmethod
    def choose(cls, pin: bool = True) -> Layout:
        cpus = tuple(available_cpus())
        if not pin or len(cpus) < 2:
            return cls(cpus, cpus)
        return cls(cpus[:1] if len(cpus) < 4 else cpus[: len(cpus) // 2], cpus[-1:])

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned (fewer than two cores, or --no-pin): everything shares every core"
        return (
            f"servers pinned to core(s) {_cores(self.servers)}, load generators to "
            f"core(s) {_cores(self.generators)}"
        )


def _cores(cpus: Iterable[int]) -> str:
    return ",".join(str(c) for c in cpus)


def pin(pid: int, cpus: Sequence[int]) -> None:
    """Pin every current thread of ``pid`` to ``cpus`` (new threads inherit the mask)."""
    mask = set(cpus)
    tasks = Path(f"/proc/{pid}/task")
    tids = [int(t.name) for t in tasks.iterdir()] if tasks.exists() else [pid]
    for tid in tids:
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.sched_setaffinity(tid, mask)


def pin_tree(pid: int, cpus: Sequence[int]) -> None:
    """Pin ``pid`` and its descendants."""
    pin(pid, cpus)
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children(recursive=True):
            pin(child.pid, cpus)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (every thread); NaN once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


class CpuMeter:
    """CPU used by some processes between :meth:`start` and :meth:`stop`, in cores."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._begin: dict[str, float] = {}
        self._at = 0.0
        self.elapsed = 0.0
        self.cores: dict[str, float] = {}

    def start(self) -> None:
        self._at = time.monotonic()
        self._begin = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        self.elapsed = elapsed = max(time.monotonic() - self._at, 1e-9)
        self.cores = {
            name: (cpu_seconds(pid) - self._begin[name]) / elapsed
            for name, pid in self.pids.items()
        }
        return self.cores


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (NaN once it is gone)."""
    try:
        return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)
    except psutil.Error:
        return float("nan")


class RssPeak:
    """Samples the RSS of some processes; keeps the peak of each."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)

    def sample(self) -> None:
        for name, pid in self.pids.items():
            value = rss_mb(pid)
            if value == value and value > self.peak[name]:  # NaN-safe
                self.peak[name] = value


#: Ports handed out below the kernel's ephemeral range (32768 and up), so no outgoing
#: connection takes one between a service stopping and starting again on it.
_PORTS = range(20_000, 32_000)
_given: set[int] = set()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 that this run has not handed out before."""
    for _ in range(1000):
        port = random.choice(_PORTS)
        if port in _given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")
