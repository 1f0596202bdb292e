"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for REST load.

Just enough for REST load on Envoy: GET and POST with one request in flight per
connection, bodies by ``content-length`` or chunked, and a streamed response read line by
line (a watch). A pool hands connections out and opens new ones up to a limit; a request
waits for a free connection, which is part of its latency.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class HttpError(Exception):
    """A response other than 200, or a broken connection."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def head(self, request: bytes) -> tuple[int, dict[str, str]]:
        """Sends ``request``; reads the status line and headers."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        return status, headers

    async def chunk(self) -> bytes:
        """The next chunk of a chunked body (empty: the last one)."""
        size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    async def fetch(self, request: bytes) -> tuple[int, bool, bytes]:
        """Sends ``request``; the status, whether the connection stays open, the body."""
        status, headers = await self.head(request)
        body = b""
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while part := await self.chunk():
                parts.append(part)
            body = b"".join(parts)
        return status, headers.get("connection") != "close", body

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

    def request(
        self,
        path: str,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        body: bytes = b"",
    ) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method == "POST":
            lines += ["content-type: application/json", f"content-length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def stream_lines(self, request: bytes) -> AsyncIterator[bytes]:
        """Sends ``request`` on a connection of its own and yields the lines of the
        (chunked) answer as they arrive; the connection closes when the caller stops."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        connection = _Connection(reader, writer)
        try:
            status, _ = await connection.head(request)
            if status != 200:
                raise HttpError(f"HTTP {status}")
            pending = b""
            while part := await connection.chunk():
                pending += part
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield line
        finally:
            connection.close()

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

    async def fetch(self, request: bytes) -> bytes:
        """Sends a prepared request; its body (:class:`HttpError` unless 200)."""
        connection = await self._acquire()
        try:
            status, keep, body = await connection.fetch(request)
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
            raise HttpError(f"HTTP {status}: {body[:200]!r}")
        return body

    async def close(self) -> None:
        async with self._freed:
            for connection in self._idle:
                connection.close()
            self._idle.clear()
