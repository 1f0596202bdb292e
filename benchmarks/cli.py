"""``scripts/bench``: run the benchmarks, write the report and the plot.

scripts/bench                      the full run (≈ 15 min) → docs/benchmarks.md + PNG
scripts/bench --smoke --out DIR    tiny loads, one run (≈ 1 min): proves the harness
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from benchmarks import bus, external, figure, footprint, orders, reads, report
from benchmarks.loadgen import ROOT
from benchmarks.machine import describe
from benchmarks.mesh import postgres_problem, recreate_postgres_databases, seed, start_mesh
from benchmarks.plan import Log, Plan, plan_for
from benchmarks.procs import Layout
from benchmarks.results import Results
from benchmarks.targets import PLATFORM_RATIO

SECTIONS = ("reads", "orders", "bus", "footprint")
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
    parser.add_argument("--workers", type=int, help="load-generator processes")
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
    """The PostgreSQL admin URL to use, or None (with a note saying why)."""
    url = args.postgres_url or (None if args.smoke else DEFAULT_POSTGRES)
    if args.no_postgres or url is None:
        results.notes.append(
            "PostgreSQL: skipped (--no-postgres, or a smoke run without --postgres-url)."
        )
        return None
    problem = await postgres_problem(url)
    if problem is not None:
        results.notes.append(
            f"PostgreSQL: not reachable at {url} ({problem}); the PostgreSQL order run is missing."
        )
        return None
    results.notes.append(
        f"PostgreSQL: the order run gives every service its own database "
        f"(`emporium_bench_<service>`, dropped and created afresh) on {_redacted(url)}; the "
        "services' connection pools are their defaults."
    )
    return str(url)


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def _orders_and_footprint(
    plan: Plan,
    args: argparse.Namespace,
    work: Path,
    results: Results,
    postgres_url: str | None,
    log: Log,
) -> None:
    profile = not args.no_profile
    wanted = set(args.sections)
    found, mesh = await footprint.cold_starts(plan, work / "footprint", log)
    try:
        if "orders" in wanted:
            sqlite = await orders.run(plan, mesh, work / "orders-sqlite", log, profile)
            results.orders.append(sqlite)
            found.loaded_rss = sqlite.rss_under_load
            top = max((s.offered for s in sqlite.steps), default=0)
            found.loaded_at = f"open-loop steps up to {top:.0f} orders/s"
    finally:
        mesh.stop()
    if "orders" in wanted:
        if postgres_url is None:
            results.orders.append(
                orders.OrdersResult(
                    "postgres",
                    available=False,
                    reason="PostgreSQL not available (see the method notes).",
                )
            )
        else:
            pg = await start_mesh(work / "mesh-postgres", "postgres", postgres_url)
            try:
                await seed(pg, plan.customers)
                results.orders.append(
                    await orders.run(plan, pg, work / "orders-postgres", log, profile=False)
                )
            finally:
                pg.stop()
                await recreate_postgres_databases(postgres_url, create=False)
    if "footprint" in wanted:
        await footprint.breakdown(found)
        results.footprint = found


async def run(args: argparse.Namespace) -> int:
    log = _logger()
    plan = plan_for(args.smoke, args.runs, args.workers)
    out: Path = args.out
    work = Path(tempfile.mkdtemp(prefix="emporium-bench-"))
    layout = Layout.choose(pin=not args.no_pin)
    started = time.monotonic()
    results = Results(plan, await describe(None), layout.describe())
    postgres_url = await _postgres(args, results)
    if postgres_url is not None:
        results.machine = await describe(postgres_url)
    results.external_tools = external.available()
    log(f"benchmark ({plan.name}) in {work}; {layout.describe()}")
    ok = False
    try:
        if "reads" in args.sections:
            results.reads = await reads.run(plan, work / "reads", layout, log)
            ratio = results.reads.platform_ratio
            if not args.no_profile and plan.profile_seconds > 0 and ratio.median < PLATFORM_RATIO:
                results.reads_profiles = await reads.profile_platform(
                    plan, work / "reads", layout, results.reads.product_id, log
                )
        if "bus" in args.sections:
            results.bus = await bus.run(plan, work / "bus", log, not args.no_profile)
        if {"orders", "footprint"} & set(args.sections):
            await _orders_and_footprint(plan, args, work, results, postgres_url, log)
        ok = True
    finally:
        results.seconds = time.monotonic() - started
        results.machine.load_after = os.getloadavg()
        if ok:
            (out / "benchmarks.md").write_text(report.render(results))
            figure.draw(results, out / report.PLOT_NAME)
            log(f"wrote {out / 'benchmarks.md'} and {out / report.PLOT_NAME}")
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work directory (logs) kept: {work}")
    for name, measured, target, met in report.headline(results):
        mark = "    " if met is None else ("ok  " if met else "MISS")
        print(f"{mark}  {name}: {measured} (target {target})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out = Path(args.out).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)  # the worker modules run with ``python -m`` from the repository root
    return asyncio.run(run(args))
