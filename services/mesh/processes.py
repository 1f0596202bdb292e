"""Child processes of the local mesh: start with an environment, restart one, stop them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def log_tail(self, lines: int = 15) -> list[str]:
        """The last ``lines`` lines of the child's log (every run of it appends there)."""
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()[-lines:]


class ProcessGroup:
    """Starts children (each in its own session) and stops every one of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], env: Mapping[str, str]) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        child = Child(name, process, log_path, list(argv), dict(env))
        self.children.append(child)
        return child

    def restart(self, child: Child) -> Child:
        """Starts ``child`` again with its argv and environment, in its place in the group."""
        if child.process.poll() is None:
            raise RuntimeError(f"{child.name} is still running")
        place = self.children.index(child)
        again = self.start(child.name, child.argv, child.env)
        self.children.pop()
        self.children[place] = again
        return again

    def python(self, name: str, module_args: list[str], env: Mapping[str, str]) -> Child:
        return self.start(name, [sys.executable, "-m", *module_args], env)

    def failed(self) -> list[Child]:
        return [c for c in self.children if c.process.poll() is not None]

    def stop_all(self, grace: float = 8.0) -> None:
        """SIGTERM everyone (newest first), wait up to ``grace`` seconds, then SIGKILL."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        self.children.clear()
