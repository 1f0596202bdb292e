"""``scripts/bench``: run P1-P7 with their peers and floors, write the report and plot.

scripts/bench                      the full run (≈ 15 min) → docs/benchmarks.md + PNG
scripts/bench --smoke --out DIR    tiny loads, one run: proves the harness
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import psutil  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from benchmarks import (
    bus,
    edge_cost,
    figure,
    footprint,
    orders,
    p1,
    peer,
    report,
    rest_read,
    rpc_cost,
)
from benchmarks.headline import headline
from benchmarks.loadgen import ROOT
from benchmarks.machine import describe
from benchmarks.mesh import Mesh, postgres_problem, recreate_postgres_databases, seed, start_mesh
from benchmarks.plan import Log, Plan, plan_for
from benchmarks.procs import Layout, available_cpus
from benchmarks.results import Results
from benchmarks.tools import ensure_tools
from services.platform.config import SERVICES

T = TypeVar("T")
SECTIONS = ("p1", "p3", "p4", "p5", "p6", "p7")
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def _logger() -> Log:
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    return log


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="tiny loads, one run")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where the report goes")
    parser.add_argument("--runs", type=int, help="repeat each measurement this often")
    parser.add_argument("--sections", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("EMPORIUM_BENCH_POSTGRES_URL"),
        help="admin URL of the PostgreSQL that gets emporium_bench_<service> databases "
        f"(default {DEFAULT_POSTGRES}; a smoke run uses PostgreSQL only when given one)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiles of misses")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return parser


async def _postgres(args: argparse.Namespace, results: Results) -> str | None:
    url = args.postgres_url or (None if args.smoke else DEFAULT_POSTGRES)
    if args.no_postgres or url is None:
        results.notes.append(
            "PostgreSQL: skipped (--no-postgres, or a smoke run without --postgres-url)."
        )
        return None
    problem = await postgres_problem(url)
    if problem is not None:
        results.notes.append(f"PostgreSQL: not reachable ({problem}); P5 on PostgreSQL is missing.")
        return None
    shown = make_url(url).render_as_string(hide_password=True)
    results.notes.append(
        f"PostgreSQL: P5 gives every service its own database (`emporium_bench_<service>`, "
        f"created afresh) on {shown}; the services' connection pools are their defaults."
    )
    return str(url)


def _others() -> str:
    """The busiest processes on the machine that this run did not start."""
    mine = {os.getpid(), *(c.pid for c in psutil.Process().children(recursive=True))}
    procs = [p for p in psutil.process_iter(["name", "cmdline"]) if p.pid not in mine]
    for process in procs:
        with contextlib.suppress(psutil.Error):
            process.cpu_percent(None)
    time.sleep(1.0)
    busy = []
    for process in procs:
        with contextlib.suppress(psutil.Error):
            share = process.cpu_percent(None)
            if share >= 5:
                command = " ".join(process.info["cmdline"] or [process.info["name"] or "?"])
                busy.append((share, command[:70]))
    busy.sort(reverse=True)
    load = os.getloadavg()[0]
    listed = "; ".join(f"`{command}` {share:.0f}%" for share, command in busy[:5])
    return (
        f"load average {load:.2f} at the start; "
        + (listed or "nothing else above 5% of a core")
        + "."
    )


async def _guarded(results: Results, name: str, log: Log, work: Awaitable[T]) -> T | None:
    """What ``work`` returns; None when it fails, which the report and the exit code say
    (the other sections still run)."""
    try:
        return await work
    except Exception as exc:
        log(f"{name} failed: {exc!r}")
        results.failures.append(f"{name} failed in this run: {exc!r}"[:500])
        return None


async def _mesh_sections(
    plan: Plan,
    args: argparse.Namespace,
    work: Path,
    results: Results,
    layout: Layout,
    postgres_url: str | None,
    the_peer: peer.Peer,
    log: Log,
) -> None:
    wanted, profile = set(args.sections), not args.no_profile
    found, mesh = await footprint.cold_starts(plan, work / "footprint", log)
    everywhere = tuple(available_cpus())
    try:
        async with contextlib.AsyncExitStack() as stack:
            targets = {n: mesh.target(n) for n in SERVICES}
            kinds = {"cached": {}, "uncached": {"jwt_cache_size": 0}}
            started = await asyncio.gather(
                *(
                    stack.enter_async_context(
                        edge_cost.running_edge(
                            mesh.group, targets, work / f"edge-{name}", everywhere, changes
                        )
                    )
                    for name, changes in kinds.items()
                )
            )
            edges = dict(zip(kinds, started, strict=True))
            if "p4" in wanted:
                results.p4 = await _guarded(
                    results,
                    "P4",
                    log,
                    rest_read.run(plan, mesh, edges, the_peer, layout, work / "p4", log, profile),
                )
            if "p5" in wanted:
                results.rpc_cost = await _guarded(
                    results,
                    "P5 RPC cost",
                    log,
                    rpc_cost.measure(work / "rpc-cost", layout, plan.window),
                )
                address, child = edges["cached"]
                sqlite = await _guarded(
                    results,
                    "P5 (SQLite)",
                    log,
                    orders.run(
                        plan, mesh, address, child.process.pid, work / "p5-sqlite", log, profile
                    ),
                )
                if sqlite is not None:
                    results.orders.append(sqlite)
                    found.loaded_rss = sqlite.rss_under_load
    finally:
        mesh.stop()
    if "p5" in wanted:
        await _guarded(
            results,
            "P5 (PostgreSQL)",
            log,
            _postgres_orders(plan, work, results, postgres_url, log, profile),
        )
    if "p7" in wanted:
        await footprint.breakdown(found)
        results.footprint = found


async def _postgres_orders(
    plan: Plan, work: Path, results: Results, postgres_url: str | None, log: Log, profile: bool
) -> None:
    if postgres_url is None:
        results.orders.append(
            orders.OrdersResult(
                "postgres",
                available=False,
                reason="PostgreSQL not available (see the method notes).",
            )
        )
        return
    pg: Mesh = await start_mesh(work / "mesh-postgres", "postgres", postgres_url)
    try:
        await seed(pg, plan.customers)
        targets = {n: pg.target(n) for n in SERVICES}
        async with edge_cost.running_edge(
            pg.group, targets, work / "edge-postgres", tuple(available_cpus()), {}
        ) as (address, child):
            results.orders.append(
                await orders.run(
                    plan, pg, address, child.process.pid, work / "p5-postgres", log, profile
                )
            )
    finally:
        pg.stop()
        await recreate_postgres_databases(postgres_url, create=False)


async def _sections(
    plan: Plan,
    args: argparse.Namespace,
    work: Path,
    results: Results,
    layout: Layout,
    postgres_url: str | None,
    log: Log,
) -> None:
    profile = not args.no_profile
    wait = plan.name != "smoke"
    if wait and "p4" in args.sections and not peer.built():
        log("P4: building the node-express peer's npm packages (once per machine)")
    the_peer = await peer.prepare(wait) if "p4" in args.sections else peer.Peer(work, "not run")
    try:
        if "p1" in args.sections:
            results.p1 = await _guarded(
                results, "P1", log, p1.run(plan, work / "p1", layout, log, profile)
            )
        if "p3" in args.sections:
            full = results.p1.throughput.get("full") if results.p1 else None
            full_max = full.median if full is not None and full.known else 400.0
            results.p3 = await _guarded(
                results, "P3", log, edge_cost.run(plan, work / "p3", layout, full_max, log)
            )
        if "p6" in args.sections:
            results.bus = await _guarded(
                results, "P6", log, bus.run(plan, work / "p6", log, profile)
            )
            if results.bus is not None and results.bus.failures:
                results.failures.append(f"P6: {results.bus.failures[0][-300:]}")
        if {"p4", "p5", "p7"} & set(args.sections):
            await _mesh_sections(plan, args, work, results, layout, postgres_url, the_peer, log)
    finally:
        if the_peer.copy != work:
            peer.remove(the_peer)


async def run(args: argparse.Namespace) -> int:
    log = _logger()
    plan = plan_for(args.smoke, args.runs)
    out: Path = args.out
    work = Path(tempfile.mkdtemp(prefix="emporium-bench-"))
    layout = Layout.choose(pin=not args.no_pin)
    started = time.monotonic()
    results = Results(plan, await describe(None), layout.describe())
    results.others = _others()
    postgres_url = await _postgres(args, results)
    if postgres_url is not None:
        results.machine = await describe(postgres_url)
    results.tools = ensure_tools()
    log(f"benchmark ({plan.name}) in {work}; {layout.describe()}")
    ok = False
    try:
        await _sections(plan, args, work, results, layout, postgres_url, log)
        ok = True
    finally:
        results.seconds = time.monotonic() - started
        results.machine.finish()
        if ok:
            (out / "benchmarks.md").write_text(report.render(results))
            figure.draw(results, out / report.PLOT_NAME)
            log(f"wrote {out / 'benchmarks.md'} and {out / report.PLOT_NAME}")
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work directory (logs) kept: {work}")
    for name, measured, target, met in headline(results):
        mark = "    " if met is None else ("ok  " if met else "MISS")
        print(f"{mark}  {name}: {measured}" + (f" (target {target})" if target else ""))
    for failure in results.failures:
        print(f"FAILED  {failure}")
    return 1 if results.failures else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out = Path(args.out).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)  # the worker modules run with ``python -m`` from the repository root
    return asyncio.run(run(args))
