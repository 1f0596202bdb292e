"""The order service's own identity (services.platform.service_token) against real identity."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.identity.v1 import identity_service_pb2_grpc as identity_grpc

from services.identity import main as identity_main
from services.platform.clients import open_channel
from services.platform.config import ConfigError, Settings
from services.platform.service_token import ServiceToken
from tests.conftest import ORDER_SERVICE_SECRET, Tokens
from tests.support import servers
from tests.support.tokens import bearer

IDENTITY = identity_pb.DESCRIPTOR.services_by_name["IdentityService"].full_name


def _settings(identity: servers.Running, credentials: str) -> Settings:
    return servers.settings_for(
        "order",
        "sqlite+aiosqlite:///unused.db",
        IDENTITY_TARGET=identity.target,
        SERVICE_CREDENTIALS=credentials,
    )


def _logins(identity: servers.Running) -> float:
    value = identity.metrics.registry.get_sample_value(
        "grpc_server_handled_total",
        {"grpc_service": IDENTITY, "grpc_method": "Login", "grpc_code": "OK"},
    )
    return value or 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_token_is_fetched_once_and_shared(identity_server: servers.Running) -> None:
    token = ServiceToken(_settings(identity_server, f"order:{ORDER_SERVICE_SECRET}"), "order")
    try:
        before = _logins(identity_server)
        got = await asyncio.gather(*(token.get() for _ in range(10)))
        assert len(set(got)) == 1
        assert _logins(identity_server) - before == 1
    finally:
        await token.close()


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.01)


async def test_the_token_is_renewed_in_the_background_shortly_before_it_expires(
    identity_server: servers.Running,
) -> None:
    clock = Clock()
    settings = _settings(identity_server, f"order:{ORDER_SERVICE_SECRET}")
    token = ServiceToken(settings, "order", refresh_margin=60, clock=clock)
    try:
        before = _logins(identity_server)
        first = await token.get()
        clock.now += 3600 - 61  # identity issues one-hour tokens
        assert await token.get() == first
        assert _logins(identity_server) - before == 1
        clock.now += 2  # inside the margin: the caller is not kept waiting for the renewal
        assert await token.get() == first
        await _until(lambda: _logins(identity_server) - before == 2 and not token.renewing)
        clock.now += 3600 - 61  # the renewed token lives an hour from its own login
        await token.get()
        assert _logins(identity_server) - before == 2
    finally:
        await token.close()


async def test_a_valid_token_stays_in_use_while_identity_is_down(tmp_path: Path) -> None:
    settings = servers.settings_for(
        "identity",
        f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}",
        SERVICE_CREDENTIALS=f"order:{ORDER_SERVICE_SECRET}",
    )
    clock = Clock()
    async with servers.serve(identity_main.build, settings) as identity:
        token = ServiceToken(
            _settings(identity, f"order:{ORDER_SERVICE_SECRET}"), "order", clock=clock
        )
        first = await token.get()
    try:
        # identity is gone; the renewal is due, then overdue
        for advance in (3600 - 30, 20):
            clock.now += advance
            started = time.monotonic()
            assert await token.get() == first
            assert time.monotonic() - started < 0.5
        await _until(lambda: not token.renewing)  # the renewal failed, and is retried
        clock.now += 60  # now it has expired: nothing valid is left
        with pytest.raises(grpc.RpcError) as caught:
            await token.get()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await token.close()


async def test_calls_carry_the_service_token_instead_of_any_user_token(
    identity_server: servers.Running, tokens: Tokens
) -> None:
    token = ServiceToken(_settings(identity_server, f"order:{ORDER_SERVICE_SECRET}"), "order")
    channel = open_channel(identity_server.target, middlewares=[token.middleware()])
    try:
        stub = identity_grpc.IdentityServiceStub(channel)
        response = await stub.GetUser(
            identity_pb.GetUserRequest(user_id="service:order"),
            metadata=bearer(tokens.user("user-1")),
        )
        assert response.user.username == "svc-order"
    finally:
        await channel.close()
        await token.close()


async def test_a_refused_token_is_dropped_and_the_next_call_logs_in_again(
    identity_server: servers.Running,
) -> None:
    token = ServiceToken(_settings(identity_server, f"order:{ORDER_SERVICE_SECRET}"), "order")
    channel = open_channel(identity_server.target, middlewares=[token.middleware()])
    try:
        await token.get()
        token._token = "revoked"  # as if identity had rotated its keys away under us
        stub = identity_grpc.IdentityServiceStub(channel)
        request = identity_pb.GetUserRequest(user_id="service:order")
        with pytest.raises(grpc.RpcError) as caught:
            await stub.GetUser(request)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        before = _logins(identity_server)
        assert (await stub.GetUser(request)).user.username == "svc-order"
        assert _logins(identity_server) - before == 1
    finally:
        await channel.close()
        await token.close()


async def test_a_wrong_secret_fails_the_call_as_unauthenticated(
    identity_server: servers.Running,
) -> None:
    token = ServiceToken(_settings(identity_server, "order:not-the-secret"), "order")
    try:
        with pytest.raises(grpc.RpcError) as caught:
            await token.get()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await token.close()


def test_a_service_without_credentials_is_a_configuration_error(
    identity_server: servers.Running,
) -> None:
    with pytest.raises(ConfigError):
        ServiceToken(_settings(identity_server, "payment:secret"), "order")
