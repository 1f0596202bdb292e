"""Verifying tokens in any service: identity's public keys, fetched over gRPC and cached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.identity.v1 import identity_service_pb2_grpc as identity_grpc

from services.platform.auth import JwksCache, TokenVerifier
from services.platform.clients import open_channel
from services.platform.config import Settings

_SERVICE = identity_pb.DESCRIPTOR.services_by_name["IdentityService"].full_name
_JWK_FIELDS = ("kty", "kid", "use", "alg", "crv", "x", "y", "n", "e")


def identity_verifier(settings: Settings) -> TokenVerifier:
    """A verifier whose keys come from identity's GetJwks (cached, refreshed on rotation)."""
    channel = open_channel(
        settings.target("identity"),
        retryable=[
            (identity_pb.DESCRIPTOR.services_by_name["IdentityService"].full_name, "GetJwks")
        ],
        default_timeout=3.0,
    )
    stub = identity_grpc.IdentityServiceStub(channel)

    async def fetch() -> Sequence[Mapping[str, str]]:
        response = await stub.GetJwks(identity_pb.GetJwksRequest())
        return [
            {name: getattr(key, name) for name in _JWK_FIELDS if getattr(key, name)}
            for key in response.keys
        ]

    return TokenVerifier(
        JwksCache(fetch), issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
