"""P4: an authenticated REST read through the edge (``GET /v1/users/{id}`` with a JWT)
against ``../shared/peers/node-express`` in the same run, both loaded by wrk with 1 thread
and 32 connections; runs alternate. Measured twice: as the target is set (and the peer's
README runs it), nothing pinned, each system and wrk sharing the machine; then each system
on the servers' core (Envoy + identity; the peer's gateway + user service), wrk on the
generators' core.

The JWT experiment of P3 runs here too, since only authenticated routes verify tokens: the
same read at a fixed rate (half of what wrk reached, from h2load as in P3) through the
default edge (verified tokens cached) and through one that verifies every signature.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import fixed_rate, pyspy, tools
from benchmarks import peer as peers
from benchmarks import targets as t
from benchmarks.edge_cost import Sample, Way, measure, summarize
from benchmarks.mesh import Mesh
from benchmarks.plan import Log, Plan
from benchmarks.procs import CpuMeter, Layout, available_cpus, pin_tree
from benchmarks.stats import UNKNOWN, Spread
from services.mesh.processes import Child


@dataclass
class ReadSide:
    throughput: Spread = UNKNOWN
    p50_ms: Spread = UNKNOWN
    p99_ms: Spread = UNKNOWN
    errors: int = 0
    cores: dict[str, Spread] = field(default_factory=dict)


@dataclass
class Comparison:
    """Emporium and the peer, loaded alike in one layout."""

    emporium: ReadSide = field(default_factory=ReadSide)
    peer: ReadSide = field(default_factory=ReadSide)
    times: Spread = UNKNOWN  # emporium / peer throughput, per run
    p99_fraction: Spread = UNKNOWN  # emporium p99 / peer p99, per run


@dataclass
class RestReadResult(Comparison):
    """The target's comparison (nothing pinned) in the inherited fields; ``pinned``, the
    same with each system on the servers' core."""

    available: bool = True
    reason: str = ""
    peer_problem: str = ""
    pinned: Comparison | None = None
    jwt: dict[str, Way] = field(default_factory=dict)  # "cached", "uncached"
    profiles: list[pyspy.Profile] = field(default_factory=list)

    @property
    def met(self) -> bool | None:
        if not (self.times.known and self.p99_fraction.known):
            return None
        return (
            self.times.median >= t.P4_THROUGHPUT_TIMES
            and self.p99_fraction.median <= t.P4_P99_FRACTION
        )


def user_id(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def _side(runs: list[tools.ToolRun], cores: list[dict[str, float]]) -> ReadSide:
    names = cores[0] if cores else {}
    return ReadSide(
        throughput=Spread.of(r.throughput for r in runs),
        p50_ms=Spread.of(r.p50_ms for r in runs),
        p99_ms=Spread.of(r.p99_ms for r in runs),
        errors=sum(r.errors for r in runs),
        cores={n: Spread.of(c[n] for c in cores) for n in names},
    )


async def run(
    plan: Plan,
    mesh: Mesh,
    edges: dict[str, tuple[str, Child]],
    peer: peers.Peer,
    layout: Layout,
    work: Path,
    log: Log,
    profile: bool,
) -> RestReadResult:
    if not tools.have("wrk"):
        return RestReadResult(available=False, reason=tools.ensure_tools()["wrk"])
    result = RestReadResult()
    token = mesh.tokens[0]
    path = f"/v1/users/{user_id(token)}"
    address, child = edges["cached"]
    ours = {"edge": child.process.pid, "identity": mesh.children["identity"].process.pid}
    everywhere = tuple(available_cpus())
    if peer.problem == "":
        await peers.start(peer, mesh.group, everywhere)
    result.peer_problem = peer.problem
    systems = _Systems(f"http://{address}{path}", f"authorization: Bearer {token}", ours, peer)
    try:
        shared = await _compare(plan, systems, None, log, "shared")
        _copy(shared, result)
        if layout.pinned:
            for pid in [*ours.values(), *peer.pids.values()]:
                pin_tree(pid, layout.servers)
            result.pinned = await _compare(plan, systems, layout.generators, log, "pinned")
        result.jwt = await _jwt(plan, mesh, edges, layout, path, token, work, result)
        if profile and plan.profile_seconds > 0 and result.met is False:
            result.profiles = await _profiles(plan, mesh, address, path, systems.auth, work)
            log("P4: profiled identity")
    finally:
        for pid in [*ours.values(), *(edge.process.pid for _, edge in edges.values())]:
            pin_tree(pid, everywhere)
        for child_process in mesh.group.children:
            if child_process.process.pid in peer.pids.values():
                child_process.process.terminate()
                child_process.process.wait(timeout=10)
    return result


@dataclass(frozen=True)
class _Systems:
    url: str
    auth: str
    ours: dict[str, int]
    peer: peers.Peer


def _copy(source: Comparison, target: Comparison) -> None:
    target.emporium, target.peer = source.emporium, source.peer
    target.times, target.p99_fraction = source.times, source.p99_fraction


async def _compare(
    plan: Plan, systems: _Systems, generators: tuple[int, ...] | None, log: Log, name: str
) -> Comparison:
    """``plan.runs`` alternating wrk runs of Emporium and the peer, wrk on ``generators``
    (``None``: not pinned)."""
    peer = systems.peer
    emporium_runs: list[tools.ToolRun] = []
    peer_runs: list[tools.ToolRun] = []
    emporium_cores: list[dict[str, float]] = []
    peer_cores: list[dict[str, float]] = []
    for number in range(plan.runs):
        meter = CpuMeter(systems.ours)
        meter.start()
        emporium_runs.append(
            await tools.wrk(systems.url, plan.wrk_seconds, generators, [systems.auth])
        )
        emporium_cores.append(meter.stop())
        line = f"P4 {name} run {number + 1}: emporium {emporium_runs[-1].throughput:,.0f}/s"
        if not peer.problem:
            meter = CpuMeter(peer.pids)
            meter.start()
            peer_runs.append(
                await tools.wrk(
                    peer.url,
                    plan.wrk_seconds,
                    generators,
                    [f"authorization: Bearer {peer.token}"],
                )
            )
            peer_cores.append(meter.stop())
            line += f", peer {peer_runs[-1].throughput:,.0f}/s"
        log(line)
    found = Comparison(emporium=_side(emporium_runs, emporium_cores))
    if peer_runs:
        found.peer = _side(peer_runs, peer_cores)
        pairs = list(zip(emporium_runs, peer_runs, strict=True))
        found.times = Spread.of(e.throughput / p.throughput for e, p in pairs if p.throughput)
        found.p99_fraction = Spread.of(e.p99_ms / p.p99_ms for e, p in pairs if p.p99_ms)
    return found


async def _jwt(
    plan: Plan,
    mesh: Mesh,
    edges: dict[str, tuple[str, Child]],
    layout: Layout,
    path: str,
    token: str,
    work: Path,
    result: RestReadResult,
) -> dict[str, Way]:
    """Half the load of the pinned comparison (the shared one's when nothing is pinned),
    each edge in turn on the servers' core with identity, as in that comparison."""
    measured = result.pinned if result.pinned is not None else result
    schedule = fixed_rate.Schedule.near(
        max(10.0, round(measured.emporium.throughput.median * plan.half_load))
    )
    rate = schedule.rate
    identity = mesh.children["identity"].process.pid
    if layout.pinned:
        for _, child in edges.values():
            pin_tree(child.process.pid, layout.servers)
    found: dict[str, list[Sample]] = {}
    for _ in range(plan.runs):
        for name, (address, child) in edges.items():
            request = fixed_rate.rest_get(address, path, [f"authorization: Bearer {token}"])
            found.setdefault(name, []).append(
                await measure(
                    request, schedule, plan, layout, work / "h2load", identity, child.process.pid
                )
            )
    labels = {
        "cached": f"GET /v1/users/{{id}} at {rate}/s, verified JWTs cached (default)",
        "uncached": f"GET /v1/users/{{id}} at {rate}/s, every JWT verified (jwtCacheSize 0)",
    }
    return {name: summarize(labels[name], samples) for name, samples in found.items()}


async def _profiles(
    plan: Plan,
    mesh: Mesh,
    address: str,
    path: str,
    auth: str,
    work: Path,
) -> list[pyspy.Profile]:
    """identity under the target's load (nothing pinned)."""
    pid = mesh.children["identity"].process.pid
    out = work / "pyspy-p4-identity.txt"
    load = tools.wrk(f"http://{address}{path}", plan.profile_seconds + 1, None, [auth])
    _, raw = await asyncio.gather(load, pyspy.record(pid, plan.profile_seconds, out))
    summary = pyspy.summarize(raw, "identity GetUser through the edge (wrk 1 \u00d7 32)")
    return [summary] if summary is not None else []
