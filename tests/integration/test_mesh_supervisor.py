"""scripts/up's supervisor over real child processes: restart with backoff, crash loops."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from services.mesh.processes import ProcessGroup
from services.mesh.supervisor import RestartPolicy, Supervisor

FAST = RestartPolicy(initial_delay=0.2, max_delay=0.4, crash_loop_restarts=3, poll_interval=0.02)


async def _supervise_until(
    supervisor: Supervisor, done: asyncio.Event, timeout: float = 20.0
) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        stop.set()
        await running


async def test_a_child_that_keeps_failing_is_restarted_and_reported_as_crash_looping(
    tmp_path: Path,
) -> None:
    group = ProcessGroup(tmp_path / "logs")
    script = "import sys; print('cannot open the database', flush=True); sys.exit(3)"
    group.start("broken", [sys.executable, "-c", script], {})
    lines: list[str] = []
    looping = asyncio.Event()

    def report(line: str) -> None:
        lines.append(line)
        if "crash-looping" in line:
            looping.set()

    try:
        await _supervise_until(Supervisor(group, policy=FAST, report=report), looping)
    finally:
        group.stop_all(grace=2)
    exits = [line for line in lines if line.startswith("broken exited (exit code 3)")]
    assert len(exits) >= 3
    assert "cannot open the database" in exits[0]  # the log's tail comes with the exit
    assert any(line.startswith("broken restarted (pid") for line in lines)
    assert [line for line in lines if "crash-looping" in line] == [
        "broken is crash-looping: 3 exits within 60s; see " + str(tmp_path / "logs/broken.log")
    ]
    delays = [float(line.split("restarting in ")[1].split("s")[0]) for line in exits]
    assert delays[0] == 0.0
    assert all(d > 0 for d in delays[1:])


async def test_a_killed_child_is_started_again_with_its_command_and_environment(
    tmp_path: Path,
) -> None:
    group = ProcessGroup(tmp_path / "logs")
    marker = tmp_path / "runs"
    script = (
        "import os, pathlib, time; "
        f"p = pathlib.Path({str(marker)!r}); "
        "p.write_text(p.read_text() + os.environ['WHO'] if p.exists() else os.environ['WHO']); "
        "time.sleep(60)"
    )
    first = group.start("sleeper", [sys.executable, "-c", script], {"WHO": "x"})
    again = asyncio.Event()

    def report(line: str) -> None:
        if line.startswith("sleeper restarted"):
            again.set()

    deadline = time.monotonic() + 10
    while not marker.exists():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    first.process.kill()
    try:
        await _supervise_until(Supervisor(group, policy=FAST, report=report), again)
        deadline = time.monotonic() + 10
        while marker.read_text() != "xx":
            assert time.monotonic() < deadline, marker.read_text()
            await asyncio.sleep(0.02)
        [child] = group.children
        assert child.process.pid != first.process.pid
        assert child.process.poll() is None
    finally:
        group.stop_all(grace=2)
    assert group.children == []
