"""The deadline of the RPC being served, so outgoing calls can inherit what remains."""

from __future__ import annotations

import time
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("emporium_deadline", default=None)


def set_remaining(seconds: float | None) -> None:
    """Record the incoming call's remaining time (``None``: the caller set no deadline)."""
    _deadline.set(None if seconds is None else time.monotonic() + seconds)


def remaining() -> float | None:
    """Seconds left of the incoming call's deadline, or ``None`` when it has none."""
    deadline = _deadline.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def timeout_for(default: float) -> float:
    """The timeout of an outgoing call: ``default``, or less when the caller has less."""
    left = remaining()
    return default if left is None else min(default, left)
