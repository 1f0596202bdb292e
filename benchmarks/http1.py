"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for REST load.

Just enough for GET requests to Envoy: one request in flight per connection, bodies by
``content-length`` or chunked. A pool hands connections out and opens new ones up to a
limit; a request waits for a free connection, which is part of its latency.
"""

from __future__ import annotations

import asyncio
import contextlib


class HttpError(Exception):
    """A response other than 200, or a broken connection."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def get(self, request: bytes) -> tuple[int, bool]:
        """Sends ``request``; returns the status and whether the connection stays open."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        return status, headers.get("connection") != "close"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Http1Pool:
    """Up to ``size`` keep-alive connections to ``host:port``."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host = host
        self.port = port
        self.size = size
        self._idle: list[_Connection] = []
        self._open = 0
        self._freed = asyncio.Condition()

    def request(self, path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()

    async def _acquire(self) -> _Connection:
        async with self._freed:
            while not self._idle and self._open >= self.size:
                await self._freed.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except BaseException:
            await self._release(None)
            raise
        return _Connection(reader, writer)

    async def _release(self, connection: _Connection | None) -> None:
        async with self._freed:
            if connection is None:
                self._open -= 1
            else:
                self._idle.append(connection)
            self._freed.notify()

    async def get(self, request: bytes) -> None:
        """Sends a prepared GET; raises :class:`HttpError` unless the answer is 200."""
        connection = await self._acquire()
        try:
            status, keep = await connection.get(request)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            connection.close()
            await self._release(None)
            raise HttpError(repr(exc)) from exc
        except BaseException:
            connection.close()
            await self._release(None)
            raise
        if keep:
            await self._release(connection)
        else:
            connection.close()
            await self._release(None)
        if status != 200:
            raise HttpError(f"HTTP {status}")

    async def close(self) -> None:
        async with self._freed:
            for connection in self._idle:
                connection.close()
            self._idle.clear()
