"""How much to measure: the full run (the published numbers) or the smoke run (tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

#: Where sections report progress (the CLI prints it to stderr).
Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Plan:
    """Every knob of a benchmark run. ``runs`` repeats each measurement (interleaved
    across the things compared); figures are the median of the runs with their range."""

    name: str
    runs: int
    prewarm: float  # seconds of discarded load per server before the first measurement
    warmup: float  # seconds of load before a measurement window
    window: float  # seconds of a measurement window (h2load, fixed-rate reads)
    wrk_seconds: float  # P4: each wrk run
    half_load: float  # "half load": this fraction of the maximum
    read_grace: float  # open loop: how long to wait for answers after the window
    shoppers: int  # P5: concurrent shoppers (closed loop)
    order_workers: int  # P5: generator processes the shoppers are spread over
    order_window: float
    order_warmup: float
    bus_burst: int  # P6: events committed at once for the throughput figure
    bus_rate: float  # P6: events per second for the lag figure
    bus_window: float
    cold_starts: int  # P7: whole-mesh cold starts (the last one serves P4 and P5)
    customers: int  # users placing orders (each registers and logs in: argon2 hashing)
    profile_seconds: float  # py-spy sampling of each missed figure (0: no profiles)


FULL = Plan(
    name="full",
    runs=3,
    prewarm=5.0,
    warmup=1.0,
    window=5.0,
    wrk_seconds=8.0,
    half_load=0.5,
    read_grace=2.0,
    shoppers=32,
    order_workers=2,
    order_window=8.0,
    order_warmup=2.0,
    bus_burst=5_000,
    bus_rate=1000.0,
    bus_window=5.0,
    cold_starts=3,
    customers=8,
    profile_seconds=5.0,
)

SMOKE = Plan(
    name="smoke",
    runs=1,
    prewarm=0.0,
    warmup=0.3,
    window=1.0,
    wrk_seconds=1.0,
    half_load=0.5,
    read_grace=1.0,
    shoppers=4,
    order_workers=2,
    order_window=3.0,
    order_warmup=0.3,
    bus_burst=300,
    bus_rate=200.0,
    bus_window=1.0,
    cold_starts=1,
    customers=2,
    profile_seconds=0.0,
)


def plan_for(smoke: bool, runs: int | None = None) -> Plan:
    plan = SMOKE if smoke else FULL
    if runs is not None:
        plan = replace(plan, runs=max(1, runs))
    return plan
