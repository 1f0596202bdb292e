"""The IdentityService servicer: proto in, command to the use case, proto out."""

from __future__ import annotations

from emporium.identity.v1 import identity_service_pb2 as pb
from emporium.identity.v1 import identity_service_pb2_grpc as pb_grpc

from services.identity.codec import user_proto
from services.identity.domain import Login, Register
from services.identity.handlers import Identity
from services.platform.types import Context


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    async def Register(self, request: pb.RegisterRequest, context: Context) -> pb.RegisterResponse:
        user = await self._identity.register(
            Register(request.username, request.email, request.password, request.display_name)
        )
        return pb.RegisterResponse(user=user_proto(user))

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginResponse:
        token, user = await self._identity.login(Login(request.username, request.password))
        return pb.LoginResponse(
            access_token=token,
            token_type="Bearer",
            expires_in_seconds=self._identity.issuer.ttl_seconds,
            user=user_proto(user),
        )

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        return pb.GetUserResponse(user=user_proto(await self._identity.get_user(request.user_id)))

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> pb.GetJwksResponse:
        return pb.GetJwksResponse(keys=[pb.Jwk(**jwk) for jwk in self._identity.jwks()])
