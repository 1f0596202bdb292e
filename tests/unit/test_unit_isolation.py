"""The guard in tests/unit/conftest.py: a unit test cannot reach the network or a process."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import grpc
import pytest

from tests.unit.conftest import UnitTestIOError


def test_a_unit_test_cannot_open_a_tcp_connection() -> None:
    with socket.socket() as sock, pytest.raises(UnitTestIOError, match="socket"):
        sock.connect(("127.0.0.1", 9))
    with pytest.raises(UnitTestIOError):
        socket.create_connection(("127.0.0.1", 9))


def test_a_unit_test_cannot_listen() -> None:
    with socket.socket() as sock, pytest.raises(UnitTestIOError, match="bind"):
        sock.bind(("127.0.0.1", 0))


def test_a_unit_test_cannot_start_a_process() -> None:
    with pytest.raises(UnitTestIOError, match="subprocess"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


async def test_a_unit_test_cannot_start_an_asyncio_subprocess() -> None:
    with pytest.raises(UnitTestIOError, match="subprocess"):
        await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")


def test_a_unit_test_cannot_open_a_grpc_channel_or_server() -> None:
    with pytest.raises(UnitTestIOError, match="channel"):
        grpc.aio.insecure_channel("127.0.0.1:9")
    with pytest.raises(UnitTestIOError, match="server"):
        grpc.aio.server()


async def test_the_event_loop_still_runs() -> None:
    assert await asyncio.sleep(0, result="ran") == "ran"
