"""Unit tests run in memory: a test here that opens a network socket, starts a gRPC server or
channel, or spawns a subprocess fails, so an I/O-bound test cannot pass for a unit test.
Such tests belong in tests/integration (or deploy/e2e). The event loop's own self-pipe is a
socket pair, which needs neither bind nor connect, so asyncio keeps working."""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any, NoReturn

import grpc
import pytest


class UnitTestIOError(AssertionError):
    """Raised when a unit test reaches for the network or a process."""


def _refuse(what: str) -> Any:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise UnitTestIOError(
            f"a unit test must not {what}: move the test to tests/integration "
            "or give the code under test a fake"
        )

    return refuse


@pytest.fixture(autouse=True)
def _no_sockets_or_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    for method in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, method, _refuse(f"open a socket ({method})"))
    monkeypatch.setattr(socket, "create_connection", _refuse("open a socket"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start a subprocess"))
    for name in ("posix_spawn", "posix_spawnp", "fork", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse(f"start a subprocess (os.{name})"))
    monkeypatch.setattr(grpc, "server", _refuse("start a gRPC server"))
    monkeypatch.setattr(grpc.aio, "server", _refuse("start a gRPC server"))
    for name in ("insecure_channel", "secure_channel"):
        monkeypatch.setattr(grpc, name, _refuse("open a gRPC channel"))
        monkeypatch.setattr(grpc.aio, name, _refuse("open a gRPC channel"))
