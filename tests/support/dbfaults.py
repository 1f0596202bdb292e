"""Database trouble on demand: a SQLite file locked by another process, PostgreSQL
connections killed by the server.

:class:`SqliteLock` runs a separate Python process that opens the service's SQLite file,
takes ``BEGIN EXCLUSIVE`` and holds it until released: the service's writes meet "database
is locked" (after its busy timeout) for as long as the lock is held, exactly as when an
operator's shell or a backup holds the file. :func:`terminate_backends` asks PostgreSQL to
end every connection to a database (``pg_terminate_backend``), as a failover or an
administrator would.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
connection.execute("ROLLBACK")
"""


class SqliteLock:
    """Another process holding ``BEGIN EXCLUSIVE`` on a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._process: asyncio.subprocess.Process | None = None

    async def acquire(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _HOLDER,
            str(self.path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 90)
        assert line.strip() == b"locked", f"could not lock {self.path}: {line!r}"

    async def release(self) -> None:
        if self._process is None:
            return
        process, self._process = self._process, None
        assert process.stdin is not None
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 30)


async def terminate_backends(url: str) -> int:
    """Ends every other connection to ``url``'s database; how many there were."""
    import asyncpg  # type: ignore[import-untyped]

    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            parsed.database,
        )
    finally:
        await connection.close()
    return len(rows)
