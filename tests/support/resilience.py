"""What the resilience tests share: a clock the test moves, and guard settings."""

from __future__ import annotations

from services.platform.config import Settings, load_settings


class FakeClock:
    """A monotonic clock that moves only when the test advances it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def guard_settings(threshold: int = 3, reset: int = 10, concurrent: int = 2) -> Settings:
    return load_settings(
        "order",
        {
            "BREAKER_FAILURE_THRESHOLD": str(threshold),
            "BREAKER_RESET_TIMEOUT_SECONDS": str(reset),
            "BULKHEAD_MAX_CONCURRENT": str(concurrent),
        },
    )
