"""The sections of docs/benchmarks.md for the whole mesh: P5 (orders), P6 (the bus), P7
(footprint), and the py-spy profiles of the misses."""

from __future__ import annotations

from benchmarks import pyspy
from benchmarks import targets as t
from benchmarks.markdown import at_least, at_most, check, ms, table
from benchmarks.orders import OrdersResult, Step
from benchmarks.results import Results
from benchmarks.rpc_cost import RpcCost, floor
from benchmarks.stats import MISSING


def _step_row(name: str, step: Step) -> list[str]:
    return [
        name,
        step.throughput.text(1, "/s"),
        ms(step.p50_ms),
        ms(step.p99_ms),
        f"{step.errors}/{step.issued}",
        step.generator_cores.text(2, " core"),
    ]


def _orders(found: OrdersResult, cores: int) -> list[str]:
    name = "SQLite" if found.backend == "sqlite" else "PostgreSQL"
    out = [f"### {name}", ""]
    if not found.available or found.closed is None:
        return [*out, f"Not measured: {found.reason}", ""]
    closed = found.closed
    rows = [_step_row(f"{closed.shoppers} shoppers (closed loop)", closed)]
    if found.half is not None:
        rows.append(_step_row(f"half load, {found.half.offered:g}/s (open loop)", found.half))
    out += table(["load", "confirmed", "p50", "p99", "failed/issued", "generator CPU"], rows)
    target = t.ORDERS_SQLITE if found.backend == "sqlite" else t.ORDERS_POSTGRES
    out += [
        f"Confirmed **{closed.throughput.text(1, '/s')}** (target ≥ {target:.0f}/s "
        f"{check(at_least(closed.throughput, target))}).",
        "",
    ]
    sample = closed.error_sample or (found.half.error_sample if found.half else "")
    if sample:
        out += [f"First failure seen: `{sample[:200]}`", ""]
    if closed.cpu_ms_per_order:
        ranked = sorted(closed.cpu_ms_per_order.items(), key=lambda item: -item[1])
        total = closed.cpu_ms_total
        note = (
            "; *postgres* = every PostgreSQL server process on the machine"
            if found.backend == "postgres"
            else ""
        )
        out += [
            f"CPU per order with {closed.shoppers} shoppers (ms of CPU from /proc over each run "
            f"÷ orders confirmed in it; {cores} cores{note}): total **{total:.1f} ms** (target "
            f"≤ {t.ORDERS_CPU_MS:.0f} ms {check(total <= t.ORDERS_CPU_MS)}).",
            "",
        ]
        out += table(
            ["process", "CPU per order", "share"],
            [[n, f"{v:.2f} ms", f"{v / total:.0%}" if total else MISSING] for n, v in ranked],
        )
    return out


def orders_section(results: Results) -> list[str]:
    out = [
        "## P5. Orders: PlaceOrder → CONFIRMED over REST, 32 shoppers",
        "",
        f"The whole mesh (six services, embedded Redis, the edge), production defaults, not "
        f"pinned. {results.plan.shoppers} shoppers spread over {results.plan.order_workers} "
        "generator processes each `POST /v1/orders` (one line, an approved card) and read the "
        "order's watch stream (`GET /v1/orders/{id}:watch`) until CONFIRMED, then start the "
        "next. Latency: from sending the POST to the CONFIRMED line. Half load: an open loop "
        "at half the confirmed rate.",
        "",
    ]
    for found in results.orders:
        out += _orders(found, results.machine.cores)
        if results.rpc_cost is not None and found.rpcs_per_order and found.closed is not None:
            out += _transport_floor(found, results.rpc_cost, results.machine.cores)
    return out


def _transport_floor(found: OrdersResult, cost: RpcCost, cores: int) -> list[str]:
    """What the RPCs an order crosses cost by themselves, and the rate that allows."""
    assert found.closed is not None
    low = floor(cost, found.rpcs_per_order, found.closed.cpu_ms_per_order, cores)
    out = [
        f"The transport floor: an order crosses **{low.rpcs:.1f} RPCs** (served, counted from "
        f"the services' `grpc_server_handled_total` per PlaceOrder; {low.from_services:.1f} of "
        "them made by a service, the rest by the edge). A bare `grpc.aio` unary call "
        f"(`benchmarks/rpc_cost.py`, same run) costs {cost.server_ms:.2f} ms of CPU to serve "
        f"and {cost.client_ms:.2f} ms to make here. Those calls plus Envoy's and Redis's "
        f"measured share come to **{low.ms_per_order:.1f} ms per order**, "
        f"{low.ms_per_order / found.closed.cpu_ms_total:.0%} of what an order costs: if "
        "handlers, SQLite, logging and the bus cost nothing, this machine's "
        f"{cores} cores would confirm at most **{low.orders_per_s:.0f} orders/s** with this "
        "design.",
        "",
    ]
    rows = [[f"`{method}`", f"{n:.2f}"] for method, n in found.rpcs_per_order.items()]
    return out + table(["RPC served", "per order"], rows)


def bus_section(results: Results) -> list[str]:
    bus = results.bus
    out = ["## P6. Event bus: outbox commit → consumer effect", ""]
    if bus is None:
        return [*out, "Not measured.", ""]
    out += [
        "`scripts/bench_bus.py`: two processes wired as the services are (the platform's "
        "`outbox_publishing` and `consuming`), each on its own SQLite file, through the "
        "embedded Redis at `appendfsync always`. Not pinned. Throughput: a burst of "
        f"{bus.burst:,} events committed 100 per transaction, from the first commit to the "
        "last effect commit. Lag: each event's effect commit minus its outbox commit at a "
        f"steady {bus.rate:,.0f} events/s (5 ms ticks).",
        "",
    ]
    rows = [
        [
            "events/s, commit → effect (burst)",
            bus.throughput.text(0, "/s"),
            f"≥ {t.BUS_EVENTS:,.0f}/s {check(at_least(bus.throughput, t.BUS_EVENTS))}",
        ],
        ["lag p99 during the burst", ms(bus.burst_lag_p99_ms), ""],
        [f"lag p50 at {bus.rate:,.0f}/s", ms(bus.lag_p50_ms), ""],
        [
            f"lag p99 at {bus.rate:,.0f}/s",
            ms(bus.lag_p99_ms),
            f"≤ {t.BUS_LAG_P99_MS:.0f} ms {check(at_most(bus.lag_p99_ms, t.BUS_LAG_P99_MS))}",
        ],
        ["runs where an effect never arrived", str(bus.lost), "0"],
    ]
    out += table(["figure", "value", "target"], rows)
    if bus.failures:
        out += [f"First failure: `{bus.failures[0][:300]}`", ""]
    return out


def footprint_section(results: Results) -> list[str]:
    foot = results.footprint
    out = ["## P7. Footprint: idle memory and time to SERVING", ""]
    if foot is None:
        return [*out, "Not measured.", ""]
    out += [
        "From starting Redis and spawning the six services (fresh SQLite databases: every "
        "migration runs) until the last one answers SERVING on `grpc.health.v1`, "
        f"{foot.cold_start.runs} start(s): **{foot.cold_start.text(2, ' s')}** (target ≤ "
        f"{t.COLD_START_S:.0f} s {check(at_most(foot.cold_start, t.COLD_START_S))}). Idle RSS "
        "(psutil): 2 s after start and seeding, no traffic; under load: the peak during P5 on "
        "SQLite.",
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
        ["process", "RSS idle", "RSS under load (peak)", "SERVING after", "CPU by then"], rows
    )
    if foot.layers:
        out += [
            "What each layer of imports adds to a fresh interpreter (memory, import time); a "
            f"bare `python -c pass` starts in {foot.interpreter_start:.2f} s:",
            "",
        ]
        out += table(
            ["layer", "RSS added", "import time"],
            [[label, f"{mb:.1f} MB", f"{s:.2f} s"] for label, mb, s in foot.layers],
        )
    return out


def profile_section(profile: pyspy.Profile) -> list[str]:
    transport = profile.share(pyspy.TRANSPORT)
    out = [
        f"#### {profile.name}: {profile.samples:,} samples",
        "",
        f"Transport (gRPC, protobuf, the event loop) takes {transport:.0%}; "
        "if everything else cost nothing, this process would serve "
        + (f"{1 / transport:.1f}\u00d7 what it served here." if transport > 0 else "without bound.")
        + " That is the floor this profile estimates.",
        "",
    ]
    areas = [[area, f"{share:.0%}"] for area, share in profile.areas[:10] if share >= 0.01]
    out += table(["where (innermost frame naming an area)", "share of samples"], areas)
    rows = [[f"`{label}`", f"{share:.1%}"] for label, share in profile.functions[:8]]
    return out + table(["innermost Python function", "share"], rows)
