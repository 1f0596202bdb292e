"""Which failures of a consumer are the infrastructure's, not the handler's.

Only a failure of the handler's own logic counts as a delivery (and can, repeated,
dead-letter an event). A database that is locked, failing over or unreachable, a Redis
that restarts, a downstream service that is unavailable: those are waited out with
backoff, the event stays pending and unacknowledged, and no delivery is counted.
"""

from __future__ import annotations

import sqlite3

import grpc
import redis.exceptions
from sqlalchemy import exc as sa_exc

from services.platform.retry import is_retryable

# SQLite: the lock or the disk, never the schema or the data ("no such table" is a bug).
_SQLITE_TRANSIENT = ("database is locked", "database is busy", "disk i/o error", "unable to open")
# PostgreSQL SQLSTATEs: serialization failure, deadlock, lock timeout, connection
# failures (class 08), admin/crash shutdown, cannot connect now, too many connections.
_POSTGRES_TRANSIENT = ("40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300")
_POSTGRES_TRANSIENT_CLASSES = ("08",)


def _database_transient(error: BaseException) -> bool:
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no connection in time
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return _database_transient(error.orig) if error.orig is not None else False
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(part in message for part in _SQLITE_TRANSIENT)
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate in _POSTGRES_TRANSIENT or sqlstate[:2] in _POSTGRES_TRANSIENT_CLASSES
    # asyncpg's connection errors, and sockets closing under any driver.
    name = type(error).__name__
    return name in {"ConnectionDoesNotExistError", "InterfaceError", "InternalClientError"}


def is_transient(error: BaseException) -> bool:
    """True when ``error`` (or what it was raised ``from``) is the infrastructure failing."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return True
        if isinstance(current, redis.exceptions.BusyLoadingError | redis.exceptions.ReadOnlyError):
            return True
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if isinstance(current, grpc.RpcError) and is_retryable(current):
            return True
        if _database_transient(current):
            return True
        current = current.__cause__
    return False
