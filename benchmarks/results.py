"""Everything one run measured, and the targets each figure is judged against."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.bus import BusResult
from benchmarks.footprint import FootprintResult
from benchmarks.machine import Machine
from benchmarks.orders import OrdersResult
from benchmarks.plan import Plan
from benchmarks.profiling import Profile
from benchmarks.reads import ReadsResult


@dataclass
class Results:
    plan: Plan
    machine: Machine
    layout: str
    seconds: float = 0.0
    reads: ReadsResult | None = None
    orders: list[OrdersResult] = field(default_factory=list)
    bus: BusResult | None = None
    footprint: FootprintResult | None = None
    reads_profiles: list[Profile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    external_tools: dict[str, bool] = field(default_factory=dict)
