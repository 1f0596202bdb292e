"""``docs/benchmarks.md``: the results beside their targets, the method, the profiles."""

from __future__ import annotations

from benchmarks import sections
from benchmarks import targets as t
from benchmarks.markdown import at_least, at_most, check, ms, signed_ms, table
from benchmarks.orders import OrdersResult
from benchmarks.reads import LABELS
from benchmarks.results import Results
from benchmarks.stats import EN_DASH, MISSING, TIMES

PLOT_NAME = "benchmarks-latency.png"


def _orders(results: Results, backend: str) -> OrdersResult | None:
    return next((o for o in results.orders if o.backend == backend and o.available), None)


def headline(results: Results) -> list[tuple[str, str, str, bool | None]]:
    """(figure, measured, target, met?) — the table at the top, and the CLI's summary."""
    rows: list[tuple[str, str, str, bool | None]] = []
    reads = results.reads
    if reads is not None:
        ratio = reads.platform_ratio
        rows.append(
            (
                "Platform: full service / bare server, max throughput",
                ratio.text(2, TIMES),
                f"≥ {t.PLATFORM_RATIO:.2f}{TIMES}",
                at_least(ratio, t.PLATFORM_RATIO),
            )
        )
        for way in ("edge-rest", "edge-grpc"):
            if way not in reads.added_p50_ms:
                continue
            name = "REST" if way == "edge-rest" else "gRPC"
            p50, p99 = reads.added_p50_ms[way], reads.added_p99_ms[way]
            cores = reads.envoy_cores_per_k[way]
            rate = f"{reads.half_rate:,.0f}/s"
            rows.append(
                (
                    f"Edge ({name}): added p50 at half load ({rate})",
                    signed_ms(p50),
                    f"≤ +{t.EDGE_ADDED_P50_MS} ms",
                    at_most(p50, t.EDGE_ADDED_P50_MS),
                )
            )
            rows.append(
                (
                    f"Edge ({name}): added p99 at half load ({rate})",
                    signed_ms(p99),
                    f"≤ +{t.EDGE_ADDED_P99_MS} ms",
                    at_most(p99, t.EDGE_ADDED_P99_MS),
                )
            )
            rows.append(
                (
                    f"Edge ({name}): Envoy CPU per 1,000 req/s",
                    cores.text(3, " core"),
                    f"≤ {t.EDGE_CORES_PER_K} core",
                    at_most(cores, t.EDGE_CORES_PER_K),
                )
            )
        rest = reads.maximum.get("edge-rest")
        if rest is not None:
            carried = rest.throughput
            ok = None
            if carried.known and rest.p99_ms.known:
                ok = carried.median >= 3 * t.NODE_READS and rest.p99_ms.median <= t.NODE_P99_MS / 3
            rows.append(
                (
                    "Edge REST reads carried (public GetProduct; max, p99 there) vs 3"
                    + TIMES
                    + " the Node/Express design",
                    f"{carried.text(0, '/s')}, p99 {ms(rest.p99_ms)}",
                    f"≥ {3 * t.NODE_READS:,.0f}/s at p99 ≤ {t.NODE_P99_MS / 3:.0f} ms",
                    ok,
                )
            )
    for backend, target in (("sqlite", t.ORDERS_SQLITE), ("postgres", t.ORDERS_POSTGRES)):
        found = _orders(results, backend)
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        if found is None:
            rows.append((f"Orders/s on {name}", "not measured", f"≥ {target:.0f}/s", None))
            continue
        rows.append(
            (
                f"Orders/s on {name} (completed sagas, best step)",
                found.capacity.text(0, "/s"),
                f"≥ {target:.0f}/s",
                at_least(found.capacity, target),
            )
        )
        if found.half is not None:
            p99 = found.half.p99_ms
            rows.append(
                (
                    f"Orders on {name}: p99 place→confirmed at half load "
                    f"({found.half.offered:.0f}/s)",
                    ms(p99),
                    f"≤ {t.ORDERS_HALF_LOAD_P99_MS:.0f} ms",
                    at_most(p99, t.ORDERS_HALF_LOAD_P99_MS),
                )
            )
    bus = results.bus
    if bus is not None:
        rows.append(
            (
                "Bus: events/s, outbox commit → consumer effect",
                bus.throughput.text(0, "/s"),
                f"≥ {t.BUS_EVENTS:,.0f}/s",
                at_least(bus.throughput, t.BUS_EVENTS),
            )
        )
        rows.append(
            (
                f"Bus: lag p99 at {bus.rate:,.0f} events/s",
                ms(bus.lag_p99_ms),
                f"≤ {t.BUS_LAG_P99_MS:.0f} ms",
                at_most(bus.lag_p99_ms, t.BUS_LAG_P99_MS),
            )
        )
    foot = results.footprint
    if foot is not None and foot.idle_rss:
        services = {n: v for n, v in foot.idle_rss.items() if n != "redis"}
        worst = max(services, key=lambda n: services[n].median)
        value = services[worst]
        rows.append(
            (
                f"RSS per idle service (largest: {worst})",
                value.text(0, " MB"),
                f"≤ {t.IDLE_RSS_MB:.0f} MB",
                at_most(value, t.IDLE_RSS_MB),
            )
        )
        rows.append(
            (
                "Whole mesh cold start to all SERVING",
                foot.cold_start.text(2, " s"),
                f"≤ {t.COLD_START_S:.0f} s",
                at_most(foot.cold_start, t.COLD_START_S),
            )
        )
    return rows


def _where_notes(results: Results) -> list[str]:
    """What the measurements themselves say about the misses cProfile cannot see."""
    notes = []
    reads = results.reads
    if reads is not None and reads.envoy_cores_per_k:
        parts = []
        falling = True
        for way, per_k in reads.envoy_cores_per_k.items():
            top = reads.maximum.get(way)
            at_max = sections.per_thousand(top) if top is not None else MISSING
            if top is not None and top.throughput.median > 0 and per_k.known:
                falling &= top.envoy_cores.median / top.throughput.median * 1000 < per_k.median
            parts.append(
                f"{LABELS[way]}: {per_k.text(3, ' core')} per 1,000 req/s at "
                f"{reads.half_rate:,.0f}/s, {at_max} at its maximum"
            )
        trend = (
            " Its CPU per request falls as the rate rises, so at these rates much of it is "
            "per-request wake-ups of its worker threads rather than filter work."
            if falling
            else ""
        )
        notes.append("- Edge: Envoy is C++ (not profiled here). " + "; ".join(parts) + "." + trend)
    foot = results.footprint
    if foot is not None and foot.layers:
        libraries = sum(mb for label, mb, _ in foot.layers[:-1])
        own = foot.layers[-1][1]
        notes.append(
            f"- Memory: a fresh interpreter that imports what a service imports holds "
            f"{libraries:.0f} MB before any service code ({own:.0f} MB more for the order "
            "service's own modules); the layers are in section 5. The libraries (gRPC, "
            "protobuf, SQLAlchemy with Alembic, OpenTelemetry, Redis, cryptography) are "
            "where the memory goes."
        )
    if foot is not None and foot.startup_cpu:
        total = sum(v.median for v in foot.startup_cpu.values())
        cores = results.machine.cores
        notes.append(
            f"- Cold start: the six services used {total:.1f} s of CPU together until "
            f"SERVING (imports, migrations, key set-up); on {cores} cores that alone takes "
            f"at least {total / cores:.1f} s. Per-service figures are in section 5."
        )
    return [*notes, ""] if notes else []


def render(results: Results) -> str:
    machine = results.machine
    plan = results.plan
    out = ["# Benchmarks", ""]
    if plan.name == "smoke":
        out += [
            "> **Smoke run** (`scripts/bench --smoke`): tiny loads, one run — it proves "
            "the harness works; the numbers mean nothing.",
            "",
        ]
    out += [
        f"Written by `scripts/bench` on {machine.when} ({plan.name} run, "
        f"{results.seconds / 60:.1f} min). Every figure is the median of {plan.runs} run(s) "
        f"({plan.max_runs} for closed-loop maxima) with the min"
        + EN_DASH
        + "max in brackets. Reproduce with `scripts/bench` (≈ 10 min, loads "
        "every core; `--smoke` for a one-minute check).",
        "",
        "## Results against the targets",
        "",
    ]
    out += table(
        ["figure", "measured", "target", ""],
        [[a, b, c, check(d)] for a, b, c, d in headline(results)],
    )
    out += [f"![Latency against throughput]({PLOT_NAME})", ""]
    out += ["## Machine and versions", ""]
    rows = [
        ["CPU", f"{machine.cpu}, {machine.cores} cores"],
        ["RAM", f"{machine.ram_gb:.1f} GiB"],
        ["kernel", machine.kernel],
        [
            "load average before / after",
            f"{machine.load_before[0]:.2f} / {machine.load_after[0]:.2f}",
        ],
    ]
    rows += [[name, version] for name, version in machine.versions.items()]
    out += table(["", ""], rows)
    out += ["## Method", ""]
    out += [
        f"- Cores: {results.layout}. Pinning uses `os.sched_setaffinity` on every thread "
        "of a process (`/proc/<pid>/task`); the whole mesh (sections 3 to 5) is not pinned: "
        "seven processes share the machine as they would in `scripts/up`."
    ]
    if results.reads is not None:
        out += [
            f"- Load generator: {results.reads.generator}. Closed loop: {plan.concurrency} "
            "calls in flight. Open loop: calls start on schedule whatever the answers do; "
            "latency runs from issuing a call to its answer; calls still unanswered "
            f"{plan.read_grace:g} s after the window are cancelled and counted as failed. "
            "The generator's own lateness against its schedule (p99, worst step): "
            f"{sections.generator_lag(results.reads):.1f} ms."
        ]
    tools = ", ".join(
        f"{n} {'used' if ok else 'not installed'}" for n, ok in results.external_tools.items()
    )
    out += [
        f"- External generators: {tools}. Every number not marked otherwise comes from "
        "`benchmarks.worker`."
    ]
    out += [
        f"- Windows: {plan.warmup:g} s warm-up then {plan.window:g} s measured (reads), "
        f"{plan.order_warmup:g} s + {plan.order_window:g} s (orders); {plan.runs} run(s) "
        f"each ({plan.max_runs} for the closed-loop maxima), interleaved across the ways "
        f"compared; every server first gets {plan.prewarm:g} s of unmeasured load, since a "
        "fresh Python server speeds up for a while. The servers' CPU cost per request still "
        "varies from run to run (how many requests each event-loop turn batches), which "
        "the ranges show. CPU from `/proc/<pid>/stat` deltas "
        "(all threads); a generator's CPU share is its own process CPU over the window "
        "(1.00 core = one core busy). RSS from psutil."
    ]
    out += [f"- {note}" for note in results.notes]
    out += [""]
    if results.reads is not None:
        out += sections.reads_sections(results.reads)
    out += sections.orders_section(results)
    out += sections.bus_section(results)
    out += sections.footprint_section(results)
    profiles = [*results.reads_profiles, *(p for o in results.orders for p in o.profiles)]
    if results.bus is not None:
        profiles += results.bus.profiles
    out += ["## Where the time goes", ""]
    misses = [row[0] for row in headline(results) if row[3] is False]
    if misses:
        out += ["Targets missed: " + "; ".join(misses) + ".", ""]
        out += _where_notes(results)
    if profiles:
        out += [
            "cProfile of the Python processes behind the misses, under the load that "
            "missed: each was restarted under `benchmarks/profiled.py`, which profiles only "
            "between two signals around the load (no start-up, no imports); idle time in "
            "`epoll` is left out, and cProfile's own overhead inflates the absolute "
            "seconds, not the shares. Own time grouped by where it was spent, then the top "
            "functions (calls: how often a function was entered; a coroutine counts once per "
            "resumption):",
            "",
        ]
        for profile in profiles:
            out += sections.profile_section(profile)
    elif misses:
        out += ["No profiles in this run (`--no-profile` or smoke mode).", ""]
    else:
        out += ["Every target met.", ""]
    return "\n".join(out).rstrip() + "\n"
