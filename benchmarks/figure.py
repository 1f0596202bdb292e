"""The published plot, from the results: GetProduct latency against throughput for each
way of serving it, and order latency against completed orders per second."""

from __future__ import annotations

from pathlib import Path

from benchmarks.plot import PALETTE, Panel, Series, render
from benchmarks.reads import LABELS, ReadsResult
from benchmarks.results import Results


def _reads_panel(reads: ReadsResult) -> Panel:
    panel = Panel(
        "GetProduct",
        "THROUGHPUT (REQUESTS/S)",
        "LATENCY, MS (LOG SCALE)",
        note="SOLID: P99   DASHED: P50 (OPEN LOOP)   BIG DOT: P99 AT THE CLOSED-LOOP MAXIMUM",
    )
    for index, (way, points) in enumerate(reads.at_rate.items()):
        color = PALETTE[index % len(PALETTE)]
        ordered = sorted(points, key=lambda p: p.throughput.median)
        p99 = [(p.throughput.median, p.p99_ms.median) for p in ordered]
        p50 = [(p.throughput.median, p.p50_ms.median) for p in ordered]
        panel.series.append(Series(LABELS[way], color, p99))
        panel.series.append(Series("", color, p50, dashed=True))
        top = reads.maximum.get(way)
        if top is not None:
            peak = [(top.throughput.median, top.p99_ms.median)]
            panel.series.append(Series("", color, peak, connected=False))
    return panel


def _orders_panel(results: Results) -> Panel:
    panel = Panel(
        "Orders: PlaceOrder to CONFIRMED",
        "COMPLETED ORDERS/S",
        "LATENCY, MS (LOG SCALE)",
        note="SOLID: P99   DASHED: P50   DOTTED LINE: KNEE",
    )
    for index, found in enumerate(o for o in results.orders if o.available and o.steps):
        color = PALETTE[(index + 4) % len(PALETTE)]
        name = "SQLite" if found.backend == "sqlite" else "PostgreSQL"
        steps = sorted(found.steps, key=lambda s: s.offered)
        panel.series.append(
            Series(name, color, [(s.throughput.median, s.p99_ms.median) for s in steps])
        )
        panel.series.append(
            Series("", color, [(s.throughput.median, s.p50_ms.median) for s in steps], True)
        )
        knee = next((s for s in steps if s.offered == found.knee), None)
        if knee is not None:
            panel.marks.append((knee.throughput.median, f"{name} KNEE", color))
    return panel


def draw(results: Results, path: Path) -> Path:
    panels = []
    if results.reads is not None:
        panels.append(_reads_panel(results.reads))
    panels.append(_orders_panel(results))
    title = (
        f"EMPORIUM: LATENCY VS THROUGHPUT ({results.machine.cores} CORES, {results.plan.name} RUN)"
    )
    return render(panels, path, title)
