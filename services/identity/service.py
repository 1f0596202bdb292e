"""The IdentityService servicer: proto in, command to the use case, proto out."""

from __future__ import annotations

from typing import Any

from emporium.identity.v1 import identity_service_pb2 as pb
from emporium.identity.v1 import identity_service_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from services.identity.domain import Login, Register, User
from services.identity.handlers import Identity

Context = aio.ServicerContext[Any, Any]


def user_proto(user: User) -> pb.User:
    created = Timestamp()
    created.FromMicroseconds(user.created_at_us)
    return pb.User(
        user_id=user.user_id,
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        roles=list(user.roles),
        create_time=created,
    )


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
