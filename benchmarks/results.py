"""Everything one run measured."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.bus import BusResult
from benchmarks.edge_cost import EdgeCostResult
from benchmarks.footprint import FootprintResult
from benchmarks.machine import Machine
from benchmarks.orders import OrdersResult
from benchmarks.p1 import P1Result
from benchmarks.plan import Plan
from benchmarks.rest_read import RestReadResult
from benchmarks.rpc_cost import RpcCost


@dataclass
class Results:
    plan: Plan
    machine: Machine
    layout: str
    seconds: float = 0.0
    p1: P1Result | None = None
    p3: EdgeCostResult | None = None
    p4: RestReadResult | None = None
    orders: list[OrdersResult] = field(default_factory=list)
    rpc_cost: RpcCost | None = None
    bus: BusResult | None = None
    footprint: FootprintResult | None = None
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    tools: dict[str, str] = field(default_factory=dict)
    others: str = ""  # what else ran on the machine (ps), for the method notes
