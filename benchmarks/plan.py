"""How much to measure: the full run (the published numbers) or the smoke run (tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

#: Where sections report progress (the CLI prints it to stderr).
Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Plan:
    """Every knob of a benchmark run. ``runs`` repeats each measurement; figures are the
    median of the runs with their minimum and maximum."""

    name: str
    runs: int
    max_runs: int  # closed-loop maxima (cheap, and the platform ratio needs the most runs)
    prewarm: float  # seconds of discarded load per server before the first measurement
    warmup: float  # seconds of load before a measurement window
    window: float  # seconds of a measurement window (reads)
    concurrency: int  # closed loop: calls in flight
    rate_fractions: tuple[float, ...]  # open-loop rates, as fractions of the full max
    half_load: float  # the fraction the side-by-side latency table uses
    generator_workers: int  # load-generator processes
    read_grace: float  # open loop: how long to wait for answers after the window
    order_rates: tuple[float, ...]  # offered orders per second, increasing
    order_window: float
    order_warmup: float
    bus_burst: int  # events committed at once for the throughput figure
    bus_rate: float  # events per second for the lag figure
    bus_window: float
    cold_starts: int  # whole-mesh cold starts (the last one serves the orders benchmark)
    customers: int  # users placing orders (each registers and logs in: argon2 hashing)
    profile_seconds: float  # load while a profiler watches (0: no profiles)


FULL = Plan(
    name="full",
    runs=3,
    max_runs=5,
    prewarm=5.0,
    warmup=1.0,
    window=3.0,
    concurrency=32,
    rate_fractions=(0.25, 0.5, 0.8),
    half_load=0.5,
    generator_workers=1,
    read_grace=2.0,
    order_rates=(5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 400),
    order_window=4.0,
    order_warmup=1.0,
    bus_burst=5_000,
    bus_rate=1000.0,
    bus_window=5.0,
    cold_starts=3,
    customers=4,
    profile_seconds=4.0,
)

SMOKE = Plan(
    name="smoke",
    runs=1,
    max_runs=1,
    prewarm=0.0,
    warmup=0.3,
    window=1.0,
    concurrency=4,
    rate_fractions=(0.5,),
    half_load=0.5,
    generator_workers=1,
    read_grace=1.0,
    order_rates=(5, 10),
    order_window=1.5,
    order_warmup=0.3,
    bus_burst=300,
    bus_rate=200.0,
    bus_window=1.0,
    cold_starts=1,
    customers=2,
    profile_seconds=0.0,
)


def plan_for(smoke: bool, runs: int | None = None, workers: int | None = None) -> Plan:
    plan = SMOKE if smoke else FULL
    if runs is not None:
        plan = replace(plan, runs=max(1, runs), max_runs=max(1, runs))
    if workers is not None:
        plan = replace(plan, generator_workers=max(1, workers))
    return plan
