"""Percentiles of one run, and medians with their spread across repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Written as escapes: the characters themselves look like ASCII ones in source.
EN_DASH = "\u2013"
TIMES = "\u00d7"
MISSING = "\u2014"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


@dataclass(frozen=True, slots=True)
class Spread:
    """One figure measured in several runs: the median, and the min and max around it."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            return UNKNOWN
        return cls(statistics.median(finite), min(finite), max(finite), len(finite))

    @property
    def known(self) -> bool:
        return not math.isnan(self.median)

    def scaled(self, factor: float) -> Spread:
        return Spread(self.median * factor, self.low * factor, self.high * factor, self.runs)

    def text(self, digits: int = 0, unit: str = "") -> str:
        """``1,234 (1,200 to 1,250)`` with an en dash: the median and, with more than one
        run, the range."""
        if not self.known:
            return MISSING
        body = f"{self.median:,.{digits}f}{unit}"
        if self.runs > 1:
            body += f" ({self.low:,.{digits}f}{EN_DASH}{self.high:,.{digits}f})"
        return body


#: A figure that was not measured.
UNKNOWN = Spread(math.nan, math.nan, math.nan, 0)


def difference(a: Spread, b: Spread) -> Spread:
    """``a - b`` as a spread: medians subtracted, the range from the extremes."""
    if not (a.known and b.known):
        return UNKNOWN
    return Spread(a.median - b.median, a.low - b.high, a.high - b.low, min(a.runs, b.runs))


def ratio(a: Spread, b: Spread) -> Spread:
    """``a / b`` as a spread: medians divided, the range from the extremes."""
    if not (a.known and b.known) or b.median == 0 or b.low <= 0:
        return UNKNOWN
    return Spread(a.median / b.median, a.low / b.high, a.high / b.low, min(a.runs, b.runs))
