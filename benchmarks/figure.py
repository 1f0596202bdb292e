"""The published plot (matplotlib): latency against throughput for the reads (P1's
servers at their h2load maximum, P3's ways at the fixed rate, P4's two systems under wrk)
and for the orders of P5 (closed loop and half load, per database)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from benchmarks.results import Results


def _reads(axis: Axes, results: Results) -> None:
    if results.p3 is not None and results.p3.available:
        for way in results.p3.ways.values():
            axis.scatter(
                [way.throughput.median],
                [way.p99_ms.median],
                marker="o",
                label=f"P3 {way.label} p99",
            )
            axis.scatter(
                [way.throughput.median],
                [way.p50_ms.median],
                marker="x",
                label=f"P3 {way.label} p50",
            )
    if results.p4 is not None and results.p4.available:
        for name, side in (("Emporium", results.p4.emporium), ("node-express", results.p4.peer)):
            if side.throughput.known:
                axis.plot(
                    [side.throughput.median] * 2,
                    [side.p50_ms.median, side.p99_ms.median],
                    marker="s",
                    label=f"P4 {name} (wrk p50\u2013p99)",
                )
    if results.p1 is not None and results.p1.available:
        for mode, spread in results.p1.throughput.items():
            mean = results.p1.mean_ms[mode]
            axis.scatter([spread.median], [mean.median], marker="^", label=f"P1 {mode} (mean)")
    axis.set_title("Reads")
    axis.set_xlabel("throughput (requests/s)")
    axis.set_ylabel("latency (ms, log)")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=6, loc="upper left")


def _orders(axis: Axes, results: Results) -> None:
    for found in results.orders:
        steps = [s for s in (found.half, found.closed) if s is not None and s.throughput.known]
        if not steps:
            continue
        name = "SQLite" if found.backend == "sqlite" else "PostgreSQL"
        xs = [s.throughput.median for s in steps]
        axis.plot(xs, [s.p99_ms.median for s in steps], marker="o", label=f"{name} p99")
        axis.plot(xs, [s.p50_ms.median for s in steps], marker="x", ls="--", label=f"{name} p50")
    axis.set_title("Orders: POST → CONFIRMED (half load, then 32 shoppers)")
    axis.set_xlabel("confirmed orders/s")
    axis.set_ylabel("latency (ms, log)")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)


def draw(results: Results, path: Path) -> Path:
    figure, (reads, orders) = plt.subplots(1, 2, figsize=(13, 5.5), dpi=100)
    _reads(reads, results)
    _orders(orders, results)
    figure.suptitle(
        f"Emporium: latency vs throughput ({results.machine.cores} cores, {results.plan.name} run)"
    )
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
    return path
