"""Fixtures for the bus fault tests: an embedded Redis with AOF, and a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
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
