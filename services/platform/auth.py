"""Who is calling: bearer JWTs issued by identity, verified against identity's public keys."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jwt

from services.platform.errors import PermissionDenied, Unauthenticated

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


def require_admin() -> Caller:
    caller = current_caller()
    if not caller.is_admin:
        raise PermissionDenied("the admin role is required")
    return caller


def require_service(*names: str) -> Caller:
    """Only the named services (by token subject ``service:<name>``) may call."""
    caller = current_caller()
    allowed = {f"service:{name}" for name in names}
    if not (caller.is_service and caller.subject in allowed):
        raise PermissionDenied(f"only the {', '.join(names)} service may call this")
    return caller


JwkFetcher = Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]


class JwksCache:
    """Public keys by ``kid``, fetched from identity and cached.

    An unknown ``kid`` triggers a refetch (keys rotate), at most once per
    ``min_refresh_seconds`` so a flood of forged kids cannot hammer identity.
    """

    def __init__(
        self,
        fetch: JwkFetcher,
        *,
        ttl_seconds: float = 300.0,
        min_refresh_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None

    async def _refresh(self) -> None:
        jwks = await self._fetch()
        self._keys = {str(jwk["kid"]): jwt.PyJWK(dict(jwk)).key for jwk in jwks}
        self._fetched_at = self._clock()

    async def key(self, kid: str) -> Any | None:
        now = self._clock()
        age = None if self._fetched_at is None else now - self._fetched_at
        if age is None or age > self._ttl or (kid not in self._keys and age > self._min_refresh):
            try:
                await self._refresh()
            except Exception as exc:  # identity unreachable: keep the keys we have
                if not self._keys:
                    raise Unauthenticated("signing keys are unavailable") from exc
        return self._keys.get(kid)


class TokenVerifier:
    """Verifies a bearer token's signature, issuer, audience and expiry."""

    def __init__(self, keys: JwksCache, *, issuer: str, audience: str, leeway: float = 5) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway

    async def verify(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated("unsupported token algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthenticated("token has no key id")
        key = await self._keys.key(kid)
        if key is None:
            raise Unauthenticated("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("invalid token") from exc
        roles = claims.get("roles", [])
        return Caller(
            subject=str(claims["sub"]),
            username=str(claims.get("name", "")),
            roles=frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset(),
        )


def bearer_token(metadata: Mapping[str, str]) -> str | None:
    value = metadata.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    return token.strip()
