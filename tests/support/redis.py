"""Redis for tests: the machine's Redis when ``REDIS_URL`` is set, else an embedded one.

A shared Redis (CI's, without persistence) is shared by every test: give each test its
own streams and groups (:func:`unique`). Tests about durability start their own
:class:`~services.platform.embedded_redis.EmbeddedRedis` instead.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.platform.embedded_redis import EmbeddedRedis

REDIS_ENV = "REDIS_URL"


@contextmanager
def redis_for_tests() -> Iterator[str]:
    """Yields a Redis URL: ``$REDIS_URL`` if set, else an embedded Redis in a temp dir."""
    url = os.environ.get(REDIS_ENV)
    if url:
        yield url
        return
    with (
        tempfile.TemporaryDirectory(prefix="emporium-redis-") as data_dir,
        EmbeddedRedis(Path(data_dir)) as redis,
    ):
        yield redis.url


def unique(prefix: str) -> str:
    """A name no other test uses (for contexts, streams and groups)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"
