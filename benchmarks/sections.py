"""The sections of docs/benchmarks.md for the reads: P1 (platform vs floor), P3 (the
edge's cost and its knobs) and P4 (authenticated REST read vs the Node/Express peer)."""

from __future__ import annotations

from benchmarks import targets as t
from benchmarks.edge_cost import VARIANTS, EdgeCostResult, Way
from benchmarks.markdown import at_least, at_most, check, ms, signed_ms, table
from benchmarks.p1 import LABELS, P1Result
from benchmarks.rest_read import Comparison, ReadSide, RestReadResult
from benchmarks.stats import MISSING, TIMES


def p1_section(p1: P1Result | None) -> list[str]:
    out = ["## P1. Catalog GetProduct over direct gRPC: the full service vs its floor", ""]
    if p1 is None or not p1.available:
        return [*out, f"Not measured ({p1.reason if p1 else 'not run'}).", ""]
    out += [
        "Three servers answer `CatalogService/GetProduct` for the same product from the same "
        "SQLite file, each pinned to the servers' core with taskset: the full service "
        "(`python -m services catalog`, as `scripts/up` runs it), the floor "
        "(`benchmarks/floor.py`: a bare `grpc.aio` server with the same server options, no "
        "interceptors, one prepared raw `sqlite3` read per call on the loop thread) and the "
        "floor with a constant answer. h2load (`-c 4 -m 16`, pinned to the generators' core) "
        "keeps 64 calls in flight; runs interleave.",
        "",
    ]
    rows = []
    for mode, label in LABELS.items():
        throughput = p1.throughput[mode]
        cores = p1.server_cores[mode]
        per_call = (
            f"{cores.median / throughput.median * 1e6:,.0f} µs"
            if throughput.known and throughput.median > 0 and cores.known
            else MISSING
        )
        rows.append(
            [
                label,
                throughput.text(0, "/s"),
                ms(p1.mean_ms[mode]),
                cores.text(2, " core"),
                per_call,
            ]
        )
    out += table(
        ["server", "req/s (h2load 4\u00d716)", "mean latency", "server CPU", "CPU per call"], rows
    )
    out += [
        f"Ratio full / raw-sqlite3 floor (run by run): **{p1.ratio.text(2, TIMES)}** (target "
        f"≥ {t.P1_RATIO:.2f}{TIMES} {check(at_least(p1.ratio, t.P1_RATIO))}). One stream "
        f"(h2load `-c 1 -m 1`) on the full service: {p1.one_stream.text(0, '/s')}, "
        f"{ms(p1.one_stream_ms)} each. h2load used {p1.generator_cores.text(2, ' core')}; "
        f"failed requests: {p1.errors}.",
        "",
    ]
    return out


def _way_row(way: Way) -> list[str]:
    return [
        way.label,
        way.throughput.text(0, "/s"),
        ms(way.p50_ms),
        ms(way.p99_ms),
        way.envoy_cores.text(3, " core") if way.envoy_cores.median else MISSING,
        way.cores_per_k.text(3, " core") if way.envoy_cores.median else MISSING,
        f"{way.errors}",
    ]


_WAY_HEADER = ["way", "achieved", "p50", "p99", "Envoy CPU", "Envoy CPU per 1,000 req/s", "errors"]


def _p3_method(p3: EdgeCostResult) -> list[str]:
    s = p3.schedule
    if s is None:
        return []
    command = (
        f"h2load -c {s.connections} -m {s.depth} -r 1 --rate-period {s.period_ms}ms "
        f"--rps {s.per_connection} -n N --log-file FILE"
    )
    return [
        "The full catalog service pinned to the servers' core; Envoy (the configuration "
        "`scripts/up` renders, its default worker threads) and the load generator, h2load "
        "(C, Debian `nghttp2-client`), on the generators' core. One fixed rate, "
        f"{p3.rate:,}/s: half of the full service's h2load maximum in P1, to the nearest "
        f"schedule h2load keeps evenly ({s.describe()}). Each way is one run of "
        f"`{command}`, N the requests of the warm-up, the window and 0.3 s more: direct "
        "gRPC and gRPC through Envoy post the GetProduct request as a gRPC body (`-d`, "
        "`content-type: application/grpc`, as in P1); REST/JSON is `GET /v1/products/{id}` "
        "over HTTP/1.1 keep-alive (`--h1`, pipelined). Opening the connections "
        f"{s.period_ms} ms apart makes their request timers (`--rps`, {s.per_connection}/s "
        "each) fall evenly over each period instead of all at once; a slow answer delays "
        "the answers behind it on its connection, which counts in their latency, but not "
        "the next request's start.",
        "",
        "Latency is every request's own, from h2load's `--log-file` (start of the request "
        f"to the end of its answer); the requests that start inside the {p3.window:g} s "
        f"window after {p3.warmup:g} s of warm-up give the rate achieved, p50 and p99. "
        "Envoy's CPU is `/proc/<pid>/stat` (utime + stime, every thread) over the same "
        "window, divided by the rate achieved. h2load itself used "
        f"{p3.generator_cores.text(3, ' core')}. Errors are requests without a 2xx answer "
        "(h2load reads the HTTP status, not `grpc-status`: a gRPC run whose answers carry no "
        "body at all counts every request as an error).",
        "",
    ]


def p3_section(p3: EdgeCostResult | None, p4: RestReadResult | None) -> list[str]:
    out = ["## P3. The edge's cost: Envoy CPU and added latency", ""]
    if p3 is None or not p3.available:
        return [*out, f"Not measured ({p3.reason if p3 else 'not run'}).", ""]
    out += _p3_method(p3)
    out += table(_WAY_HEADER, [_way_row(w) for w in p3.ways.values()])
    for way, name in (("rest", "REST/JSON"), ("grpc", "gRPC")):
        added = p3.added_p99_ms[way]
        per_k = p3.ways[way].cores_per_k
        out += [
            f"- {name} through Envoy: added p50 {signed_ms(p3.added_p50_ms[way])}, added p99 "
            f"**{signed_ms(added)}** (target ≤ +{t.EDGE_ADDED_P99_MS:.0f} ms "
            f"{check(at_most(added, t.EDGE_ADDED_P99_MS))}); Envoy **{per_k.text(3, ' core')}** "
            f"per 1,000 req/s (target ≤ {t.EDGE_CORES_PER_K} "
            f"{check(at_most(per_k, t.EDGE_CORES_PER_K))})."
        ]
    out += [
        "",
        "### What each part of the edge costs (one-off experiments, same REST read, same rate)",
        "",
        "The same REST read from the same h2load schedule; each edge differs from the "
        "chart's defaults in one `edge.cost` knob of charts/emporium/values.yaml (the "
        "defaults: trace sampling 0% — the trace context "
        "still reaches the services —, JSON access log for every request, gRPC health checks "
        "every 5 s, verified JWTs cached). The JWT rows are the authenticated read of P4 at "
        "half of its wrk maximum with each system on one core (h2load as above, with the "
        "`authorization` header), each edge in turn on that core with identity.",
        "",
    ]
    base = p3.variants.get("default")
    rows = [
        [*_way_row(p3.variants[name]), _versus(p3.variants[name], base)]
        for name in VARIANTS
        if name in p3.variants
    ]
    if p4 is not None:
        cached = p4.jwt.get("cached")
        rows += [[*_way_row(way), _versus(way, cached)] for way in p4.jwt.values()]
    out += table([*_WAY_HEADER, "CPU per 1,000 vs its default"], rows)
    out += [
        "How the defaults were chosen: trace export is off unless sampled (0%: Envoy still "
        "starts or continues the W3C trace context, so the services' logs and spans join it, "
        "and a client's sampled `traceparent` is still honoured); verified JWTs are cached; "
        "the access log stays on for every request by default because it is the edge's "
        "record of each request and the way a request is joined to its trace (`accessLog: "
        "errors` keeps only failures where its cost matters); health checks stay at one RPC "
        "per endpoint every 5 s, a fixed cost that does not grow with the request rate.",
        "",
    ]
    return out


def _versus(way: Way, base: Way | None) -> str:
    if base is None or way is base or not (way.cores_per_k.known and base.cores_per_k.known):
        return MISSING
    if base.cores_per_k.median <= 0:
        return MISSING
    change = way.cores_per_k.median / base.cores_per_k.median - 1
    return f"{change:+.0%}"


def _side_row(name: str, side: ReadSide) -> list[str]:
    cores = ", ".join(f"{n} {v.text(2, ' core')}" for n, v in side.cores.items())
    return [
        name,
        side.throughput.text(0, "/s"),
        ms(side.p50_ms),
        ms(side.p99_ms),
        str(side.errors),
        cores or MISSING,
    ]


def p4_section(p4: RestReadResult | None) -> list[str]:
    out = ["## P4. Authenticated REST read through the edge vs the Node/Express peer", ""]
    if p4 is None or not p4.available:
        return [*out, f"Not measured ({p4.reason if p4 else 'not run'}).", ""]
    out += [
        "`GET /v1/users/{id}` with a customer's ES256 JWT through the edge (Envoy's jwt_authn, "
        "then identity's GetUser, which verifies the token again) against "
        "`../shared/peers/node-express` (Express gateway: rate limit, HS256 JWT, proxy → "
        "Express user service on better-sqlite3), run from a fresh copy with `npm ci` as its "
        "README says. Both load by `wrk -t1 -c32 --latency`; runs alternate. The target's "
        "comparison is the one the target was set with and the peer's README runs: nothing "
        "pinned, each system and wrk sharing every core. The second puts each system on the "
        "servers' core (Envoy + identity; gateway + user service) and wrk on the generators'.",
        "",
    ]
    if p4.peer_problem:
        out += [f"The peer did not run: {p4.peer_problem}.", ""]
    out += _comparison("Nothing pinned (the target's)", p4, check(p4.met))
    if p4.pinned is not None:
        out += _comparison("Each system on one core", p4.pinned, "no target")
    return out


def _comparison(title: str, found: Comparison, verdict: str) -> list[str]:
    rows = [_side_row("Emporium: Envoy → identity", found.emporium)]
    if found.peer.throughput.known:
        rows.append(_side_row("node-express: gateway → user service", found.peer))
    out = [f"### {title}", ""]
    out += table(["system", "req/s", "p50", "p99", "non-2xx/errors", "CPU"], rows)
    if found.times.known:
        out += [
            f"Emporium / peer: **{found.times.text(2, TIMES)}** the throughput at "
            f"**{found.p99_fraction.text(2, TIMES)}** the p99 (target ≥ "
            f"{t.P4_THROUGHPUT_TIMES:.0f}{TIMES} at ≤ 0.33{TIMES}: {verdict}).",
            "",
        ]
    return out
