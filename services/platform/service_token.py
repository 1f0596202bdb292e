"""A service's own identity on outgoing calls: a token from identity, cached and attached.

A service logs into identity as its service account (username ``svc-<name>``, secret from
``SERVICE_CREDENTIALS``), renews the token in the background ahead of its expiry (keeping
the current one in use while identity is unavailable), and sends it as
``authorization: Bearer <token>`` on calls to services that accept only service callers.
An end user's token is never forwarded: downstream services see the service, not the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import grpc
from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.identity.v1 import identity_service_pb2_grpc as identity_grpc

from services.platform.clients import ClientMiddleware, Outgoing, Settle, open_channel
from services.platform.config import ConfigError, Settings
from services.platform.metrics import Metrics
from services.platform.resilience import guard
from services.platform.retry import Backoff
from services.platform.tasks import stop_task

log = logging.getLogger("emporium.service_token")


class ServiceToken:
    """The access token of service ``service_name``, renewed in the background.

    The first call logs in (concurrent callers share that one login). From then on a
    background task renews the token ``refresh_margin`` seconds (or a tenth of its
    lifetime, if shorter) before it expires, retrying with backoff while identity is
    unavailable; callers keep getting the current token as long as it is valid, so an
    outage of identity shorter than the margin is never seen by a call. Only a caller
    that finds no valid token at all waits for a login. The identity channel is guarded
    by the platform's bulkhead and breaker.
    """

    def __init__(
        self,
        settings: Settings,
        service_name: str,
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        login_timeout: float = 3.0,
        metrics: Metrics | None = None,
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
        self._channel = open_channel(
            settings.target("identity"),
            default_timeout=login_timeout,
            middlewares=guard("identity", settings, metrics),
        )
        self._stub = identity_grpc.IdentityServiceStub(self._channel)
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._login: asyncio.Future[str] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._due = asyncio.Event()

    @property
    def renewing(self) -> bool:
        """Whether a login is under way."""
        return self._login is not None

    async def get(self) -> str:
        """A valid token; waits for a login only when there is none."""
        token = self._token
        now = self._clock()
        if token is not None and now < self._expires_at:
            if now >= self._refresh_at:
                self._due.set()  # the renewer may be asleep on a clock that jumped
            return token
        return await asyncio.shield(self._log_in())

    def _log_in(self) -> asyncio.Future[str]:
        """The login under way, or a new one (single flight)."""
        if self._login is None:
            self._login = asyncio.ensure_future(self._request_token())
            self._login.add_done_callback(self._logged_in)
        return self._login

    def _logged_in(self, done: asyncio.Future[str]) -> None:
        self._login = None
        if not done.cancelled() and done.exception() is None and self._renewer is None:
            self._renewer = asyncio.get_running_loop().create_task(
                self._renew(), name=f"{self._username}-token-renewal"
            )

    async def _request_token(self) -> str:
        started = self._clock()
        response = await self._stub.Login(
            identity_pb.LoginRequest(username=self._username, password=self._secret)
        )
        lifetime = float(response.expires_in_seconds)
        self._token = response.access_token
        # Used until shortly before it expires (callees allow no more than a few seconds
        # of clock skew), renewed well before that.
        self._expires_at = started + lifetime - min(5.0, lifetime / 20)
        self._refresh_at = started + max(0.0, lifetime - min(self._margin, lifetime / 10))
        self._due.clear()
        return self._token

    async def _renew(self) -> None:
        backoff = Backoff(initial=0.2, cap=10.0)
        while True:
            wait = self._refresh_at - self._clock()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._due.wait(), wait)
                self._due.clear()
                continue
            try:
                await asyncio.shield(self._log_in())
                backoff.reset()
            except Exception as exc:
                log.warning("renewing the service token failed: %r", exc)
                await asyncio.sleep(backoff.next())

    def invalidate(self, token: str | None = None) -> None:
        """Forget the token (a callee refused ``token``); the next call logs in again."""
        if token is None or token == self._token:
            self._token = None

    def middleware(self) -> ClientMiddleware:
        """What a channel's calls need to carry this token (:func:`open_channel`)."""
        return _Bearer(self)

    async def close(self) -> None:
        renewer, self._renewer = self._renewer, None
        await stop_task(renewer)
        await self._channel.close()


class _Bearer(ClientMiddleware):
    """Adds the service's bearer token; a refused token is dropped so the next call
    logs in again."""

    def __init__(self, token: ServiceToken) -> None:
        self._token = token

    async def on_start(self, call: Outgoing) -> Settle:
        token = await self._token.get()
        call.metadata.append(("authorization", f"Bearer {token}"))

        def settle(code: grpc.StatusCode) -> None:
            if code == grpc.StatusCode.UNAUTHENTICATED:
                self._token.invalidate(token)

        return settle
