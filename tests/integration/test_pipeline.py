"""The interceptor pipeline over real gRPC: status mapping, hidden crashes, logs, metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc import aio

from services.platform import errors, logs
from services.platform.auth import current_caller
from services.platform.config import load_settings
from services.platform.keys import identity_verifier
from services.platform.metrics import Metrics
from services.platform.runner import standard_middlewares
from services.platform.server import ServiceDefinition, ServiceHost
from services.platform.status import field_violations
from tests.conftest import Tokens
from tests.support.servers import Running

SERVICE = "emporium.test.v1.ProbeService"


def _identity(data: bytes) -> bytes:
    return data


async def _unary(request: bytes, context: Any) -> bytes:
    match request:
        case b"invalid":
            raise errors.InvalidArgument(
                [errors.FieldViolation("lines[0].quantity", "must be > 0")]
            )
        case b"missing":
            raise errors.NotFound("no such thing")
        case b"crash":
            raise RuntimeError("secret internal detail")
        case b"whoami":
            return current_caller().subject.encode()
    return request


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    if request == b"fail":
        raise errors.FailedPrecondition("stream broke")
    yield b"second"


def _register(server: aio.Server) -> None:
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_unary, _identity, _identity),
            "Private": grpc.unary_unary_rpc_method_handler(_unary, _identity, _identity),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream, _identity, _identity),
        },
    )
    server.add_generic_rpc_handlers((handler,))


@pytest.fixture
async def probe(identity_server: Running) -> AsyncIterator[tuple[aio.Channel, Metrics]]:
    settings = load_settings("catalog", {"IDENTITY_TARGET": identity_server.target})
    metrics = Metrics("catalog")
    definition = ServiceDefinition(
        name="probe",
        register=_register,
        service_names=[SERVICE],
        middlewares=standard_middlewares(
            settings,
            metrics,
            identity_verifier(settings),
            [f"/{SERVICE}/Echo", f"/{SERVICE}/Stream"],
        ),
    )
    host = ServiceHost(definition, "127.0.0.1:0")
    port = await host.start()
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, metrics
    await host.stop(0.1)


def _call(channel: aio.Channel, method: str) -> Any:
    return channel.unary_unary(f"/{SERVICE}/{method}", _identity, _identity)


async def test_domain_errors_become_statuses_with_field_violations(probe: Any) -> None:
    channel, _ = probe
    with pytest.raises(aio.AioRpcError) as caught:
        await _call(channel, "Echo")(b"invalid")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {"lines[0].quantity": "must be > 0"}
    with pytest.raises(aio.AioRpcError) as caught:
        await _call(channel, "Echo")(b"missing")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_crash_is_internal_and_leaks_nothing(probe: Any) -> None:
    channel, _ = probe
    with pytest.raises(aio.AioRpcError) as caught:
        await _call(channel, "Echo")(b"crash")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (caught.value.details() or "")
    assert "Traceback" not in (caught.value.details() or "")


async def test_private_methods_need_a_valid_token_and_see_the_caller(
    probe: Any, tokens: Tokens
) -> None:
    channel, _ = probe
    with pytest.raises(aio.AioRpcError) as caught:
        await _call(channel, "Private")(b"whoami")
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    reply = await _call(channel, "Private")(
        b"whoami", metadata=(("authorization", f"Bearer {tokens.user('u-42')}"),)
    )
    assert reply == b"u-42"


async def test_stream_errors_after_messages_keep_their_code(probe: Any) -> None:
    channel, _ = probe
    call = channel.unary_stream(f"/{SERVICE}/Stream", _identity, _identity)(b"fail")
    received: list[bytes] = []

    async def drain() -> None:
        async for message in call:
            received.append(message)

    with pytest.raises(aio.AioRpcError) as caught:
        await drain()
    assert received == [b"first"]
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_each_rpc_is_counted_by_method_and_code(probe: Any) -> None:
    channel, metrics = probe
    await _call(channel, "Echo")(b"hello")
    with pytest.raises(aio.AioRpcError):
        await _call(channel, "Echo")(b"missing")
    value = metrics.registry.get_sample_value(
        "grpc_server_handled_total",
        {"grpc_service": SERVICE, "grpc_method": "Echo", "grpc_code": "NOT_FOUND"},
    )
    assert value == 1
    ok = metrics.registry.get_sample_value(
        "grpc_server_handled_total",
        {"grpc_service": SERVICE, "grpc_method": "Echo", "grpc_code": "OK"},
    )
    assert ok is not None
    assert ok >= 1


async def test_the_access_log_is_json_with_method_code_duration_and_trace(
    probe: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    channel, _ = probe
    logs.configure("catalog")
    try:
        await _call(channel, "Echo")(b"hello")
    finally:
        logging.getLogger().handlers.clear()
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    entry = next(e for e in lines if e.get("method") == f"/{SERVICE}/Echo")
    assert entry["service"] == "catalog"
    assert entry["code"] == "OK"
    assert entry["duration_ms"] >= 0
    assert "trace_id" in entry
