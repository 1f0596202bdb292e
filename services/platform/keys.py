"""Verifying tokens in any service: identity's public keys, fetched over gRPC and cached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.identity.v1 import identity_service_pb2_grpc as identity_grpc

from services.platform.auth import JwksCache, TokenVerifier
from services.platform.clients import open_channel
from services.platform.config import Settings
from services.platform.metrics import Metrics
from services.platform.resilience import guard

_SERVICE = identity_pb.DESCRIPTOR.services_by_name["IdentityService"].full_name
_JWK_FIELDS = ("kty", "kid", "use", "alg", "crv", "x", "y", "n", "e")
#: A key fetch gives up after this long: requests wait for one only when they must.
FETCH_TIMEOUT = 1.0
#: After this long keys are revalidated in the background (tests shorten it).
REFRESH_ENV = "EMPORIUM_JWKS_REFRESH_SECONDS"
#: Keys are trusted this long after identity last answered.
MAX_STALE_ENV = "EMPORIUM_JWKS_MAX_STALE_SECONDS"


def identity_verifier(settings: Settings, metrics: Metrics | None = None) -> TokenVerifier:
    """A verifier whose keys come from identity's GetJwks: cached, refreshed in the
    background, served stale for up to an hour while identity is unavailable
    (:class:`services.platform.auth.JwksCache`). The channel is guarded by the platform's
    bulkhead and breaker (shared with the process's other identity channels when
    ``metrics`` is given)."""
    channel = open_channel(
        settings.target("identity"),
        retryable=[(_SERVICE, "GetJwks")],
        default_timeout=FETCH_TIMEOUT,
        middlewares=guard("identity", settings, metrics),
    )
    stub = identity_grpc.IdentityServiceStub(channel)

    async def fetch() -> Sequence[Mapping[str, str]]:
        response = await stub.GetJwks(identity_pb.GetJwksRequest())
        return [
            {name: getattr(key, name) for name in _JWK_FIELDS if getattr(key, name)}
            for key in response.keys
        ]

    cache = JwksCache(
        fetch,
        ttl_seconds=settings.seconds(REFRESH_ENV, 300.0),
        max_stale_seconds=settings.seconds(MAX_STALE_ENV, 3600.0, maximum=24 * 3600.0),
        fetch_timeout=FETCH_TIMEOUT,
    )
    return TokenVerifier(
        cache,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
