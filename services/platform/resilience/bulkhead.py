"""The bulkhead: a bounded number of concurrent calls to one downstream."""

from __future__ import annotations


class Bulkhead:
    """A bounded number of concurrent calls; no queue, the excess is refused."""

    def __init__(self, max_concurrent: int) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.in_flight = 0

    def try_acquire(self) -> bool:
        if self.in_flight >= self.max_concurrent:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
