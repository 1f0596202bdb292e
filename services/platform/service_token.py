"""A service's own identity on outgoing calls: a token from identity, cached and attached.

A service logs into identity as its service account (username ``svc-<name>``, secret from
``SERVICE_CREDENTIALS``), keeps the token until shortly before it expires, and sends it as
``authorization: Bearer <token>`` on calls to services that accept only service callers.
An end user's token is never forwarded: downstream services see the service, not the user.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc
from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.identity.v1 import identity_service_pb2_grpc as identity_grpc
from grpc import aio

from services.platform.clients import open_channel
from services.platform.config import ConfigError, Settings


class ServiceToken:
    """The access token of service ``service_name``, refreshed ``refresh_margin`` seconds
    (or a tenth of its lifetime, if shorter) before it expires. Concurrent callers share one
    login."""

    def __init__(
        self,
        settings: Settings,
        service_name: str,
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        login_timeout: float = 3.0,
    ) -> None:
        secret = settings.service_credentials.get(service_name)
        if not secret:
            raise ConfigError(
                f"SERVICE_CREDENTIALS has no secret for {service_name!r} (name:secret,...)"
            )
        self._username = f"svc-{service_name}"
        self._secret = secret
        self._margin = refresh_margin
        self._clock = clock
        self._channel = open_channel(settings.target("identity"), default_timeout=login_timeout)
        self._stub = identity_grpc.IdentityServiceStub(self._channel)
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A valid token (logging in when there is none or it is about to expire)."""
        token = self._token
        if token is not None and self._clock() < self._refresh_at:
            return token
        async with self._lock:
            if self._token is not None and self._clock() < self._refresh_at:
                return self._token
            response = await self._stub.Login(
                identity_pb.LoginRequest(username=self._username, password=self._secret)
            )
            lifetime = float(response.expires_in_seconds)
            self._token = response.access_token
            self._refresh_at = self._clock() + max(0.0, lifetime - min(self._margin, lifetime / 10))
            return self._token

    def invalidate(self) -> None:
        """Forget the token (a callee refused it); the next call logs in again."""
        self._token = None

    def interceptor(self) -> aio.ClientInterceptor:
        return _Bearer(self)

    async def close(self) -> None:
        await self._channel.close()


class _Bearer(aio.UnaryUnaryClientInterceptor, aio.UnaryStreamClientInterceptor):
    """Adds the service's bearer token; a refused token is dropped so the next call
    logs in again."""

    def __init__(self, token: ServiceToken) -> None:
        self._token = token

    async def _details(self, details: aio.ClientCallDetails) -> aio.ClientCallDetails:
        metadata = aio.Metadata(*(details.metadata or ()))
        metadata["authorization"] = f"Bearer {await self._token.get()}"
        return aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        call = await continuation(await self._details(details), request)
        try:
            await call
        except aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                self._token.invalidate()
        return call

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(await self._details(details), request)
