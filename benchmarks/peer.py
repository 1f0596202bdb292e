"""The P4 peer: ``../shared/peers/node-express`` (an Express gateway with rate limit, HS256
JWT and a proxy, in front of an Express user service on SQLite), run as its README says:
from a fresh copy outside the repository (npm writes ``node_modules``), never committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.loadgen import ROOT
from benchmarks.procs import free_port
from benchmarks.tools import taskset
from services.mesh.processes import ProcessGroup

SECRET = "peer-secret"


def source() -> Path:
    """Where the peer is: ``$EMPORIUM_PEERS/node-express`` or ``../shared/peers/...``."""
    peers = os.environ.get("EMPORIUM_PEERS")
    return (
        Path(peers) / "node-express" if peers else ROOT.parent / "shared" / "peers" / "node-express"
    )


@dataclass
class Peer:
    copy: Path
    problem: str = ""
    gateway_port: int = 0
    token: str = ""
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/api/users/1"


async def _run(
    argv: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"{argv[0]} timed out after {timeout:.0f} s"
    return process.returncode or 0, output.decode(errors="replace")


def _cache() -> Path:
    """Where the peer's npm packages are built once per machine (better-sqlite3 compiles
    SQLite from source: minutes), keyed by its lock file."""
    lock = (source() / "package-lock.json").read_bytes()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "emporium-bench" / f"node-express-{hashlib.sha256(lock).hexdigest()[:12]}"


def _problem() -> str:
    if not (source() / "package.json").exists():
        return f"the peer is not at {source()}"
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js and npm are not installed (Debian: nodejs, npm)"
    return ""


def built() -> bool:
    return not _problem() and (_cache() / ".built").exists()


async def build() -> str:
    """``npm ci`` of the peer into the cache (once); the problem, or ""."""
    problem = _problem()
    if problem or built():
        return problem
    cache = _cache()
    shutil.rmtree(cache, ignore_errors=True)
    shutil.copytree(source(), cache)
    env = {"npm_config_build_from_source": "true", "JOBS": str(os.cpu_count() or 1)}
    code, output = await _run(["npm", "ci", "--no-audit", "--no-fund"], cache, 1800, env)
    if code != 0:
        return f"npm ci failed: {output.strip()[-300:]}"
    (cache / ".built").write_text("ok\n")
    return ""


async def prepare(wait: bool) -> Peer:
    """A fresh copy of the peer with its npm packages (built first when ``wait``), or the
    reason there is none."""
    copy = Path(tempfile.mkdtemp(prefix="emporium-peer-"))
    peer = Peer(copy)
    if not built():
        peer.problem = (
            await build()
            if wait
            else (
                _problem()
                or "its npm packages are not built yet (a full scripts/bench run builds "
                "them once per machine)"
            )
        )
        if peer.problem:
            return peer
    shutil.copytree(source(), copy, dirs_exist_ok=True)
    shutil.copytree(_cache() / "node_modules", copy / "node_modules", symlinks=True)
    return peer


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status)
    except OSError:
        return 0


async def _wait(url: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(_get, url) == 200:
            return True
        await asyncio.sleep(0.1)
    return False


async def start(peer: Peer, group: ProcessGroup, cpus: tuple[int, ...]) -> None:
    """Starts the user service and the gateway pinned to ``cpus``, adds user 1 and makes
    the gateway's token for it; sets ``peer.problem`` when something fails."""
    users, gateway = free_port(), free_port()
    common = {"LOG_DIR": str(peer.copy)}
    started = group.start(
        "peer-user-service",
        [*taskset(cpus), "node", str(peer.copy / "user-service.js")],
        {**common, "PORT": str(users), "DB": str(peer.copy / "users.db")},
    )
    peer.pids["peer user service"] = started.process.pid
    started = group.start(
        "peer-gateway",
        [*taskset(cpus), "node", str(peer.copy / "gateway.js")],
        {
            **common,
            "PORT": str(gateway),
            "JWT_SECRET": SECRET,
            "RATE_MAX": "1000000000",
            "USER_SERVICE_URL": f"http://127.0.0.1:{users}",
        },
    )
    peer.pids["peer gateway"] = started.process.pid
    peer.gateway_port = gateway
    if not (
        await _wait(f"http://127.0.0.1:{users}/health")
        and await _wait(f"http://127.0.0.1:{gateway}/health")
    ):
        peer.problem = "the peer did not start (see its logs in the work directory)"
        return
    body = b'{"username":"peer","email":"peer@example.com"}'
    create = urllib.request.Request(
        f"http://127.0.0.1:{users}/users",
        data=body,
        headers={"content-type": "application/json"},
        method="POST",
    )
    await asyncio.to_thread(lambda: urllib.request.urlopen(create, timeout=5).read())
    script = f"console.log(require('jsonwebtoken').sign({{id:1}},'{SECRET}'))"
    code, output = await _run(["node", "-e", script], peer.copy, 30)
    if code != 0:
        peer.problem = f"could not sign the peer's token: {output[-200:]}"
    peer.token = output.strip()


def remove(peer: Peer) -> None:
    shutil.rmtree(peer.copy, ignore_errors=True)
