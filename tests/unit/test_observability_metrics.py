"""The platform's helpers for metrics sampled from a store: an age computed at scrape time,
and the background sampler that feeds it."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Gauge

from services.platform.clock import now_us
from services.platform.metrics import OldestAge, Sampler


def test_the_oldest_age_is_zero_when_nothing_waits_and_grows_while_something_does() -> None:
    registry = CollectorRegistry()
    age = OldestAge(registry, "emporium_test_oldest_seconds", "test")
    assert registry.get_sample_value("emporium_test_oldest_seconds") == 0.0
    age.track(now_us() - 90_000_000)
    first = registry.get_sample_value("emporium_test_oldest_seconds")
    assert first is not None
    assert 90.0 <= first < 100.0
    age.track(None)
    assert registry.get_sample_value("emporium_test_oldest_seconds") == 0.0


async def test_the_sampler_keeps_probing_after_a_failure() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("emporium_test_sampled", "test", registry=registry)
    calls = 0
    probed = asyncio.Event()

    async def probe() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the store is away")
        gauge.set(calls)
        probed.set()

    sampler = Sampler(probe, interval=0.01)
    await sampler.start()
    await asyncio.wait_for(probed.wait(), timeout=5)
    await sampler.stop()
    assert (registry.get_sample_value("emporium_test_sampled") or 0) >= 2
