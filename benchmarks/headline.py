"""The table at the top of docs/benchmarks.md and the CLI's summary: P1-P7 against their
targets, each with the peer or floor it was measured beside."""

from __future__ import annotations

from benchmarks import targets as t
from benchmarks.markdown import at_least, at_most, ms, signed_ms
from benchmarks.orders import OrdersResult
from benchmarks.results import Results
from benchmarks.rpc_cost import floor
from benchmarks.stats import TIMES

Row = tuple[str, str, str, bool | None]


def orders_of(results: Results, backend: str) -> OrdersResult | None:
    return next((o for o in results.orders if o.backend == backend and o.available), None)


def _p1(results: Results) -> list[Row]:
    p1 = results.p1
    if p1 is None or not p1.available:
        return [("P1 catalog GetProduct / raw-sqlite3 floor", "not measured", "", None)]
    full, floor = p1.throughput["full"], p1.throughput["sqlite"]
    return [
        (
            "P1 catalog GetProduct, direct gRPC (h2load 4\u00d716), full / raw-sqlite3 floor",
            f"{p1.ratio.text(2, TIMES)}: {full.text(0, '/s')} vs {floor.text(0, '/s')}",
            f"≥ {t.P1_RATIO:.2f}{TIMES}",
            at_least(p1.ratio, t.P1_RATIO),
        )
    ]


def _p3(results: Results) -> list[Row]:
    p3 = results.p3
    if p3 is None or not p3.available:
        return [("P3 Envoy CPU per 1,000 req/s", "not measured", "", None)]
    rows: list[Row] = []
    for way, name in (("rest", "REST"), ("grpc", "gRPC")):
        cores = p3.ways[way].cores_per_k
        rows.append(
            (
                f"P3 Envoy CPU per 1,000 req/s ({name}, at {p3.rate:,.0f}/s)",
                cores.text(3, " core"),
                f"≤ {t.EDGE_CORES_PER_K} core",
                at_most(cores, t.EDGE_CORES_PER_K),
            )
        )
        added = p3.added_p99_ms[way]
        rows.append(
            (
                f"P3 edge's added p99 at half load ({name}, {p3.rate:,.0f}/s) vs direct gRPC",
                signed_ms(added),
                f"≤ +{t.EDGE_ADDED_P99_MS:.0f} ms",
                at_most(added, t.EDGE_ADDED_P99_MS),
            )
        )
    return rows


def _p4(results: Results) -> list[Row]:
    p4 = results.p4
    if p4 is None or not p4.available:
        return [("P4 authenticated REST read vs node-express", "not measured", "", None)]
    ours, peer = p4.emporium, p4.peer
    measured = f"{ours.throughput.text(0, '/s')}, p99 {ms(ours.p99_ms)}"
    if peer.throughput.known:
        measured += (
            f" vs peer {peer.throughput.text(0, '/s')}, p99 {ms(peer.p99_ms)} "
            f"({p4.times.text(2, TIMES)}; p99 {p4.p99_fraction.text(2, TIMES)})"
        )
    else:
        measured += f" (peer not run: {p4.peer_problem})"
    return [
        (
            "P4 GET /v1/users/{id} with JWT through the edge (wrk 1\u00d732, nothing pinned) "
            "vs node-express",
            measured,
            f"≥ {t.P4_THROUGHPUT_TIMES:.0f}{TIMES} peer at p99 ≤ 1/3 of the peer's",
            p4.met,
        )
    ]


def _p5(results: Results) -> list[Row]:
    rows: list[Row] = []
    for backend, target in (("sqlite", t.ORDERS_SQLITE), ("postgres", t.ORDERS_POSTGRES)):
        found = orders_of(results, backend)
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        if found is None or found.closed is None:
            rows.append(
                (f"P5 orders confirmed/s on {name}", "not measured", f"≥ {target:.0f}/s", None)
            )
            continue
        closed = found.closed
        rows.append(
            (
                f"P5 orders confirmed/s on {name}, {closed.shoppers} shoppers over REST",
                f"{closed.throughput.text(1, '/s')} "
                f"(p50 {ms(closed.p50_ms)}, p99 {ms(closed.p99_ms)})",
                f"≥ {target:.0f}/s",
                at_least(closed.throughput, target),
            )
        )
        if found.half is not None:
            rows.append(
                (
                    f"P5 p99 place→confirmed at half load on {name} ({found.half.offered:g}/s)",
                    ms(found.half.p99_ms),
                    f"≤ {t.ORDERS_HALF_LOAD_P99_MS:.0f} ms",
                    at_most(found.half.p99_ms, t.ORDERS_HALF_LOAD_P99_MS),
                )
            )
        total = closed.cpu_ms_total
        rows.append(
            (
                f"P5 CPU per order on {name}, every process",
                f"{total:.1f} ms",
                f"≤ {t.ORDERS_CPU_MS:.0f} ms",
                total <= t.ORDERS_CPU_MS if closed.cpu_ms_per_order else None,
            )
        )
        if results.rpc_cost is not None and found.rpcs_per_order:
            cores = results.machine.cores
            low = floor(results.rpc_cost, found.rpcs_per_order, closed.cpu_ms_per_order, cores)
            rows.append(
                (
                    f"P5 transport floor on {name}: {low.rpcs:.0f} RPCs per order at a bare "
                    "grpc.aio call's cost, plus Envoy and Redis",
                    f"{low.ms_per_order:.1f} ms per order → at most {low.orders_per_s:.0f}/s",
                    "",
                    None,
                )
            )
    return rows


def _p6_p7(results: Results) -> list[Row]:
    rows: list[Row] = []
    bus = results.bus
    if bus is not None:
        rows.append(
            (
                "P6 bus events/s, outbox commit → consumer effect",
                bus.throughput.text(0, "/s"),
                f"≥ {t.BUS_EVENTS:,.0f}/s",
                at_least(bus.throughput, t.BUS_EVENTS),
            )
        )
        rows.append(
            (
                f"P6 bus lag p99 at {bus.rate:,.0f} events/s",
                ms(bus.lag_p99_ms),
                f"≤ {t.BUS_LAG_P99_MS:.0f} ms",
                at_most(bus.lag_p99_ms, t.BUS_LAG_P99_MS),
            )
        )
    foot = results.footprint
    if foot is not None and foot.idle_rss:
        services = {n: v for n, v in foot.idle_rss.items() if n != "redis"}
        worst = max(services, key=lambda n: services[n].median)
        rows.append(
            (
                f"P7 idle RSS per service (largest: {worst})",
                services[worst].text(0, " MB"),
                f"≤ {t.IDLE_RSS_MB:.0f} MB",
                at_most(services[worst], t.IDLE_RSS_MB),
            )
        )
        rows.append(
            (
                "P7 whole mesh SERVING after start",
                foot.cold_start.text(2, " s"),
                f"≤ {t.COLD_START_S:.0f} s",
                at_most(foot.cold_start, t.COLD_START_S),
            )
        )
    return rows


def headline(results: Results) -> list[Row]:
    """(figure, measured, target, met?) in P order."""
    return [*_p1(results), *_p3(results), *_p4(results), *_p5(results), *_p6_p7(results)]
