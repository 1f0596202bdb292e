"""Markdown helpers: tables, figures with units, and the target marks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from benchmarks.stats import MISSING, Spread


def check(ok: bool | None) -> str:
    return MISSING if ok is None else ("✓" if ok else "✗")


def at_least(value: Spread, target: float) -> bool | None:
    return value.median >= target if value.known else None


def at_most(value: Spread, target: float) -> bool | None:
    return value.median <= target if value.known else None


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def ms(value: Spread) -> str:
    return value.text(2 if value.known and abs(value.median) < 10 else 1, " ms")


def signed_ms(value: Spread) -> str:
    if not value.known:
        return MISSING
    sign = "+" if value.median >= 0 else ""
    return sign + value.text(2, " ms")
