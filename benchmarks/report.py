"""``docs/benchmarks.md``: P1-P7 beside their targets, the method, the profiles."""

from __future__ import annotations

from benchmarks import pyspy
from benchmarks.headline import headline
from benchmarks.markdown import check, table
from benchmarks.results import Results
from benchmarks.sections import p1_section, p3_section, p4_section
from benchmarks.sections_mesh import (
    bus_section,
    footprint_section,
    orders_section,
    profile_section,
)
from benchmarks.stats import EN_DASH

PLOT_NAME = "benchmarks-latency.png"


def _method(results: Results) -> list[str]:
    plan = results.plan
    tools = "; ".join(f"{name}: {where}" for name, where in results.tools.items())
    out = [
        "## Method",
        "",
        f"- Cores: {results.layout}. Pinning: taskset for the processes the bench starts "
        "for P1, P3 and P4's peer, `sched_setaffinity` on every thread for Envoy and "
        "identity in P4's second comparison (its first, the target's, pins nothing); "
        "P5\u2013P7 run the whole mesh unpinned, as `scripts/up` does.",
        f"- Load generators: {tools}. h2load (P1) keeps 4 connections \u00d7 16 streams; "
        "h2load at a fixed rate (P3: `--rps` on connections opened a few ms apart, so the "
        "requests arrive evenly, every request's latency from its `--log-file`; the method "
        f"is in P3); wrk (P4) 1 thread \u00d7 32 connections, {plan.wrk_seconds:g} s per "
        "run; the Python generator (`benchmarks/worker.py`) only where a flow needs it: the "
        "orders of P5 (PlaceOrder, then WatchOrder until CONFIRMED), closed loop for the "
        "shoppers and open loop at half load.",
        f"- Windows: {plan.warmup:g} s warm-up then {plan.window:g} s (P1, P3), "
        f"{plan.order_warmup:g} s + {plan.order_window:g} s (P5); {plan.runs} run(s) of "
        f"everything, interleaved across the things compared; every server first gets "
        f"{plan.prewarm:g} s of unmeasured load. CPU from `/proc/<pid>/stat` (every thread), "
        "RSS from psutil.",
        "- Profiles: py-spy (`record --native`, attached to the running process under the "
        "load that missed, idle samples left out).",
    ]
    if results.others:
        out.append(f"- Also running on the machine during this run: {results.others}")
    out += [f"- {note}" for note in results.notes]
    out += [f"- **{failure}**" for failure in results.failures]
    return [*out, ""]


def _machine(results: Results) -> list[str]:
    machine = results.machine
    rows = [
        ["CPU", f"{machine.cpu}, {machine.cores} cores"],
        ["RAM", f"{machine.ram_gb:.1f} GiB"],
        ["kernel", machine.kernel],
        [
            "load average (1 min) before / after",
            f"{machine.load_before[0]:.2f} / {machine.load_after[0]:.2f}",
        ],
        [
            "Python speed: 10⁷ additions in a loop (best of 3)",
            f"{machine.python_loop_s:.2f} s",
        ],
        [
            "CPU time stolen by the hypervisor during the run",
            "not read" if machine.stolen is None else f"{machine.stolen:.1%}",
        ],
    ]
    rows += [[name, version] for name, version in machine.versions.items()]
    return ["## Machine and versions", "", *table(["", ""], rows)]


def _profiles(results: Results) -> list[pyspy.Profile]:
    found: list[pyspy.Profile] = []
    if results.p1 is not None:
        found += results.p1.profiles
    if results.p4 is not None:
        found += results.p4.profiles
    for orders in results.orders:
        found += orders.profiles
    if results.bus is not None:
        found += results.bus.profiles
    return found


def _where(results: Results) -> list[str]:
    out = ["## Where the time goes", ""]
    misses = [row[0] for row in headline(results) if row[3] is False]
    if not misses:
        return [*out, "Every target measured here is met.", ""]
    out += ["Missed: " + "; ".join(misses) + ".", ""]
    if any(miss.startswith("P3") for miss in misses):
        out += [
            "- P3's misses are Envoy's own (C++, not sampled here): the experiments table in "
            "P3 says which knob moves its CPU.",
            "",
        ]
    profiles = _profiles(results)
    if not profiles:
        return [*out, "No profiles in this run (`--no-profile` or smoke mode).", ""]
    out += [
        "py-spy samples of the processes behind the misses, under the load that missed; each "
        "sample is put with the innermost frame that names an area (a sample inside "
        "libsqlite3 is SQLite's, one in gRPC's Cython core gRPC's):",
        "",
    ]
    for profile in profiles:
        out += profile_section(profile)
    return out


def render(results: Results) -> str:
    plan = results.plan
    out = ["# Benchmarks", ""]
    if plan.name == "smoke":
        out += [
            "> **Smoke run** (`scripts/bench --smoke`): tiny loads, one run — it proves the "
            "harness works; the numbers mean nothing.",
            "",
        ]
    out += [
        f"Written by `scripts/bench` on {results.machine.when} ({plan.name} run, "
        f"{results.seconds / 60:.1f} min). Every figure is the median of {plan.runs} run(s), "
        f"the min{EN_DASH}max in brackets, each beside the peer or floor it is judged against, "
        "measured in the same run. Reproduce with `scripts/bench` (loads every core; "
        "`--smoke` for a quick check of the harness).",
        "",
        "## Results against the targets",
        "",
    ]
    out += table(
        ["figure", "measured (beside its peer or floor)", "target", ""],
        [[a, b, c, check(d)] for a, b, c, d in headline(results)],
    )
    out += [f"![Latency against throughput]({PLOT_NAME})", ""]
    out += _machine(results)
    out += _method(results)
    out += p1_section(results.p1)
    out += p3_section(results.p3, results.p4)
    out += p4_section(results.p4)
    out += orders_section(results)
    out += bus_section(results)
    out += footprint_section(results)
    out += _where(results)
    return "\n".join(out).rstrip() + "\n"
