"""Fixtures for the fault tests: an embedded Redis with AOF, a fresh database, a seed.

A randomized scenario takes the ``seed`` fixture: ``$EMPORIUM_CHAOS_SEED`` when set (to
replay a failure), else a fresh one. The seed is printed when the test starts and added
to the report of a failing test, so every failure can be run again exactly.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from services.platform.bus import Bus
from services.platform.db import Database
from services.platform.embedded_redis import EmbeddedRedis
from tests import busapp
from tests.support.databases import fresh_database


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A durable Redis for the fault tests that do not kill it (never the machine's)."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as redis:
        yield redis


@pytest.fixture
def own_redis(tmp: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own, for tests that kill and restart it."""
    with EmbeddedRedis(tmp / "redis") as redis:
        yield redis


@pytest.fixture
async def db(backend: str, tmp: Path) -> AsyncIterator[Database]:
    async with fresh_database(backend, tmp, "bus") as url, busapp.database(url) as database:
        yield database


@pytest.fixture
async def bus(embedded_redis: EmbeddedRedis) -> AsyncIterator[Bus]:
    bus = Bus.from_url(embedded_redis.url)
    yield bus
    await bus.close()


SEED_ENV = "EMPORIUM_CHAOS_SEED"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: randomized fault scenario (seeded); scripts/chaos N repeats them"
    )


_SEED = pytest.StashKey[int]()


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The randomized scenario's seed (``$EMPORIUM_CHAOS_SEED`` or a fresh one)."""
    raw = os.environ.get(SEED_ENV, "")
    value = int(raw) if raw else random.SystemRandom().randrange(1, 2**31)
    request.node.stash[_SEED] = value
    print(f"{request.node.nodeid}: {SEED_ENV}={value}", file=sys.stderr, flush=True)
    return value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    value = item.stash.get(_SEED, None)
    if value is not None and report.failed:
        report.sections.append(("chaos seed", f"rerun with {SEED_ENV}={value}"))
    return report
