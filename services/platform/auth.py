"""Who is calling: bearer JWTs issued by identity, verified against identity's public keys."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import jwt

from services.platform.errors import PermissionDenied, Unauthenticated
from services.platform.lru import Lru

log = logging.getLogger("emporium.auth")

#: The only signature algorithm Emporium issues and accepts.
ALGORITHM = "ES256"
ADMIN_ROLE = "admin"
SERVICE_ROLE = "service"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal of the current call."""

    subject: str
    username: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    @property
    def is_service(self) -> bool:
        return SERVICE_ROLE in self.roles


_caller: ContextVar[Caller | None] = ContextVar("emporium_caller", default=None)


def set_caller(caller: Caller | None) -> None:
    _caller.set(caller)


def optional_caller() -> Caller | None:
    return _caller.get()


def current_caller() -> Caller:
    """The caller of the current RPC; UNAUTHENTICATED when there is none."""
    caller = _caller.get()
    if caller is None:
        raise Unauthenticated("a bearer token is required")
    return caller


def may_read(caller: Caller, owner_id: str, *services: str) -> bool:
    """The owner-or-admin rule: a user reads what is theirs, an admin everything, and the
    named services (by token subject ``service:<name>``) what they need."""
    return caller.subject == owner_id or caller.is_admin or _is_one_of(caller, services)


def require_admin() -> Caller:
    caller = current_caller()
    if not caller.is_admin:
        raise PermissionDenied("the admin role is required")
    return caller


def require_service(*names: str) -> Caller:
    """Only the named services (by token subject ``service:<name>``) may call."""
    caller = current_caller()
    if not _is_one_of(caller, names):
        raise PermissionDenied(f"only the {', '.join(names)} service may call this")
    return caller


def _is_one_of(caller: Caller, services: Sequence[str]) -> bool:
    """Whether ``caller`` is one of the named services (token subject ``service:<name>``)."""
    return caller.is_service and caller.subject in {f"service:{name}" for name in services}


JwkFetcher = Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]


class JwksCache:
    """Public keys by ``kid``, fetched from identity and cached.

    - **Fresh** keys (fetched less than ``ttl_seconds`` ago) are served as they are.
    - **Stale** keys (up to ``max_stale_seconds`` after the last successful fetch, one hour
      by default) are still served at once while a refresh runs in the background
      (stale-while-revalidate): a slow or unavailable identity delays no request.
      Older keys are not trusted: a request then waits for a refresh (at most
      ``fetch_timeout`` seconds) and is UNAUTHENTICATED if identity cannot answer.
    - An **unknown** ``kid`` (keys rotate) triggers a refetch, attempted at most once per
      ``min_refresh_seconds`` (successful or not), so neither a flood of forged kids nor
      an outage makes every request knock on identity.
    - **Single flight**: one fetch at a time; every request that needs it awaits that one.
    """

    def __init__(
        self,
        fetch: JwkFetcher,
        *,
        ttl_seconds: float = 300.0,
        min_refresh_seconds: float = 5.0,
        max_stale_seconds: float = 3600.0,
        fetch_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._max_stale = max_stale_seconds
        self._fetch_timeout = fetch_timeout
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._inflight: asyncio.Future[None] | None = None

    @property
    def fetching(self) -> bool:
        """Whether a fetch is under way."""
        return self._inflight is not None

    async def key(self, kid: str) -> Any | None:
        """The public key named ``kid``; ``None`` when identity does not know it."""
        now = self._clock()
        age = None if self._fetched_at is None else now - self._fetched_at
        if age is not None and age <= self._max_stale:
            if kid in self._keys:
                if age > self._ttl and not self.fetching and self._may_attempt(now):
                    self._start_fetch(now)  # revalidate in the background
                return self._keys[kid]
            if not self._may_attempt(now):
                return None
        elif not self._may_attempt(now) and not self.fetching:
            raise Unauthenticated("signing keys are unavailable")
        try:
            await self._wait_for_fetch(now)
        except Exception as exc:
            if not self._usable(self._clock()):
                raise Unauthenticated("signing keys are unavailable") from exc
        return self._keys.get(kid) if self._usable(self._clock()) else None

    def _usable(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at <= self._max_stale

    def _may_attempt(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self._min_refresh

    def _start_fetch(self, now: float) -> asyncio.Future[None]:
        """The fetch under way, or a new one (the caller checked the rate limit)."""
        if self._inflight is None:
            self._attempted_at = now
            self._inflight = asyncio.ensure_future(self._refresh())
            self._inflight.add_done_callback(self._fetched)
        return self._inflight

    async def _wait_for_fetch(self, now: float) -> None:
        await asyncio.shield(self._start_fetch(now))

    def _fetched(self, done: asyncio.Future[None]) -> None:
        self._inflight = None
        if not done.cancelled() and done.exception() is not None:
            log.warning("fetching identity's signing keys failed: %r", done.exception())

    async def _refresh(self) -> None:
        async with asyncio.timeout(self._fetch_timeout):
            jwks = await self._fetch()
        self._keys = {str(jwk["kid"]): jwt.PyJWK(dict(jwk)).key for jwk in jwks}
        self._fetched_at = self._clock()


@dataclass(slots=True, eq=False)
class TokenVerifier:
    """Verifies a bearer token's signature, issuer, audience and expiry.

    Verified tokens are remembered (up to ``cache_size``, least recently used first out)
    until their ``exp``: a token seen before costs one dictionary lookup, not a signature
    check. A remembered token stays accepted until it expires even if identity stops
    publishing its key meanwhile, as it would be by any service that verified it earlier.
    """

    keys: JwksCache
    _: KW_ONLY
    issuer: str
    audience: str
    leeway: float = 5
    cache_size: int = 4096
    clock: Callable[[], float] = time.time
    _verified: Lru[str, tuple[Caller, float]] = field(init=False)

    def __post_init__(self) -> None:
        self._verified = Lru(self.cache_size)

    async def verify(self, token: str) -> Caller:
        remembered = self._verified.get(token)
        if remembered is not None:
            caller, expires = remembered
            if self.clock() < expires:
                return caller
            self._verified.forget(token)
        caller, expires = await self._check(token)
        self._verified.put(token, (caller, expires))
        return caller

    async def _check(self, token: str) -> tuple[Caller, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated("unsupported token algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthenticated("token has no key id")
        key = await self.keys.key(kid)
        if key is None:
            raise Unauthenticated("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("invalid token") from exc
        roles = claims.get("roles", [])
        caller = Caller(
            subject=str(claims["sub"]),
            username=str(claims.get("name", "")),
            roles=frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset(),
        )
        return caller, float(claims["exp"])


def bearer_token(metadata: Mapping[str, str]) -> str | None:
    value = metadata.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    return token.strip()
