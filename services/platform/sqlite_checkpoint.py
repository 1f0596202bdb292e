"""WAL checkpoints of one SQLite file, off the event loop's thread.

SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages:
here that is the event loop's thread, so under load every call in flight stalls for
10-20 ms about once a second. The writer connection turns it off (``wal_autocheckpoint=0``)
and tells this checkpointer of each commit instead: a PASSIVE checkpoint runs ``delay``
seconds later in a worker thread, on a connection of its own (``sqlite3`` lets go of the GIL
while SQLite works). PASSIVE takes no lock a writer or a reader waits for and copies only
the pages no reader still needs, so it never blocks a transaction; the WAL stays as small as
what ``delay`` seconds of commits write. A file nobody writes is never touched.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

log = logging.getLogger("emporium.db")

#: Seconds from a commit to the checkpoint that follows it.
CHECKPOINT_DELAY = 1.0


class Checkpointer:
    """Checkpoints the WAL of the SQLite file at ``path`` after commits, one at a time."""

    def __init__(self, path: str, delay: float = CHECKPOINT_DELAY) -> None:
        self._path = path
        self._delay = delay
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Future[None] | None = None
        self._connection: sqlite3.Connection | None = None
        #: Checkpoints completed (for tests and curiosity).
        self.done = 0

    def committed(self) -> None:
        """A write committed: a checkpoint follows within ``delay`` seconds."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self._start)

    def _start(self) -> None:
        self._timer = None
        if self._running is not None:  # the last one is still at it: look again later
            self.committed()
            return
        running = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
        running.add_done_callback(self._finished)
        self._running = running

    def _finished(self, running: asyncio.Future[None]) -> None:
        self._running = None
        if not running.cancelled() and (error := running.exception()) is not None:
            log.warning("WAL checkpoint failed: %s", error, extra={"path": self._path})

    def _checkpoint(self) -> None:
        """In a worker thread."""
        if self._connection is None:
            self._connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA busy_timeout=0")
        try:
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            return  # another process is checkpointing: its pages are being copied already
        self.done += 1

    async def close(self) -> None:
        """Cancels a checkpoint not yet started, waits for one running, closes its connection."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        running = self._running
        if running is not None:
            await asyncio.wait({running})
        if self._connection is not None:
            self._connection.close()
            self._connection = None
