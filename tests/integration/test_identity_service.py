"""IdentityService over real gRPC, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest
from emporium.identity.v1 import identity_service_pb2 as pb
from emporium.identity.v1 import identity_service_pb2_grpc as pb_grpc

from services.identity import main as identity_main
from services.identity.tokens import SigningKey
from services.platform.errors import FailedPrecondition
from services.platform.metrics import Metrics
from services.platform.status import field_violations
from tests.support import servers
from tests.support.databases import fresh_database
from tests.support.tokens import bad_tokens, bearer


@pytest.fixture
async def identity(
    backend: str, tmp: Path, signing_key: SigningKey
) -> AsyncIterator[pb_grpc.IdentityServiceStub]:
    async with fresh_database(backend, tmp, "identity") as url:
        settings = servers.settings_for(
            "identity",
            url,
            JWT_SIGNING_KEY_PEM=signing_key.pem(),
            BOOTSTRAP_ADMIN="root:root-password",
        )
        async with servers.serve(identity_main.build, settings) as running:
            yield pb_grpc.IdentityServiceStub(running.channel)


def _register(name: str | None = None, **overrides: str) -> pb.RegisterRequest:
    name = name or f"user{uuid.uuid4().hex[:8]}"
    values = {
        "username": name,
        "email": f"{name}@example.com",
        "password": "correct horse",
        "display_name": "Ada",
    }
    values.update(overrides)
    return pb.RegisterRequest(**values)


async def _login(
    stub: pb_grpc.IdentityServiceStub, username: str, password: str
) -> pb.LoginResponse:
    return await stub.Login(pb.LoginRequest(username=username, password=password))


async def test_register_then_login_issues_a_verifiable_es256_token(
    identity: pb_grpc.IdentityServiceStub,
) -> None:
    registered = await identity.Register(_register("ada"))
    assert registered.user.username == "ada"
    assert list(registered.user.roles) == ["customer"]

    login = await _login(identity, "ada", "correct horse")
    jwks = await identity.GetJwks(pb.GetJwksRequest())
    header = jwt.get_unverified_header(login.access_token)
    key = next(k for k in jwks.keys if k.kid == header["kid"])
    public = jwt.PyJWK({"kty": key.kty, "crv": key.crv, "x": key.x, "y": key.y, "kid": key.kid})
    claims = jwt.decode(login.access_token, public.key, algorithms=["ES256"], audience="emporium")
    assert header["alg"] == "ES256"
    assert claims["sub"] == registered.user.user_id
    assert claims["iss"] == "emporium-identity"
    assert claims["exp"] > claims["iat"]
    assert login.token_type == "Bearer"


async def test_register_rejects_a_duplicate_username(identity: pb_grpc.IdentityServiceStub) -> None:
    await identity.Register(_register("grace"))
    with pytest.raises(grpc.RpcError) as caught:
        await identity.Register(_register("grace", email="other@example.com"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_register_rejects_a_duplicate_email(identity: pb_grpc.IdentityServiceStub) -> None:
    await identity.Register(_register("linus", email="same@example.com"))
    with pytest.raises(grpc.RpcError) as caught:
        await identity.Register(_register("torvalds", email="SAME@example.com"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"username": ""}, "username"),
        ({"username": "x" * 65}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "p" * 200}, "password"),
        ({"display_name": "d" * 101}, "display_name"),
    ],
)
async def test_register_rejects_bad_input_naming_the_field(
    identity: pb_grpc.IdentityServiceStub, overrides: dict[str, str], field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await identity.Register(_register(**overrides))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(caught.value)


@pytest.mark.parametrize(
    ("username", "email"),
    [
        ("svc-order", "svc@example.com"),
        ("svc-anything", "any@example.com"),
        ("root", "root@example.com"),
        ("mallory", "svc-order@accounts.emporium.invalid"),
    ],
)
async def test_register_refuses_service_account_and_bootstrap_admin_names(
    identity: pb_grpc.IdentityServiceStub, username: str, email: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await identity.Register(_register(username, email=email))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {
        ("email" if username == "mallory" else "username"): "is reserved"
    }


async def test_a_service_account_never_adopts_a_user_who_took_its_name(
    backend: str, tmp: Path, signing_key: SigningKey
) -> None:
    async with fresh_database(backend, tmp, "identity") as url:
        first = servers.settings_for("identity", url, JWT_SIGNING_KEY_PEM=signing_key.pem())
        async with servers.serve(identity_main.build, first) as running:
            stub = pb_grpc.IdentityServiceStub(running.channel)
            # Before the bootstrap admin "boss" exists, anyone may take that name.
            await stub.Register(_register("boss", password="the customer's"))
        second = servers.settings_for(
            "identity", url, JWT_SIGNING_KEY_PEM=signing_key.pem(), BOOTSTRAP_ADMIN="boss:pw-boss1"
        )
        definition = await identity_main.build(second, Metrics("identity"))
        try:
            bootstrap = definition.on_start[0]
            with pytest.raises(FailedPrecondition, match="belongs to another user"):
                await bootstrap()
        finally:
            for hook in definition.on_stop:
                await hook()


async def test_login_with_a_wrong_password_is_unauthenticated(
    identity: pb_grpc.IdentityServiceStub,
) -> None:
    await identity.Register(_register("alan"))
    for username, password in [("alan", "wrong password"), ("nobody", "correct horse")]:
        with pytest.raises(grpc.RpcError) as caught:
            await _login(identity, username, password)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_login_with_empty_fields_is_invalid(identity: pb_grpc.IdentityServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await _login(identity, "", "")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {"username", "password"}


async def test_get_user_returns_the_callers_own_profile(
    identity: pb_grpc.IdentityServiceStub,
) -> None:
    user = (await identity.Register(_register("barbara"))).user
    token = (await _login(identity, "barbara", "correct horse")).access_token
    got = await identity.GetUser(pb.GetUserRequest(user_id=user.user_id), metadata=bearer(token))
    assert got.user.email == "barbara@example.com"


async def test_get_user_of_another_user_is_not_found(identity: pb_grpc.IdentityServiceStub) -> None:
    other = (await identity.Register(_register("edsger"))).user
    await identity.Register(_register("tony"))
    token = (await _login(identity, "tony", "correct horse")).access_token
    with pytest.raises(grpc.RpcError) as caught:
        await identity.GetUser(pb.GetUserRequest(user_id=other.user_id), metadata=bearer(token))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_admin_reads_any_user_and_missing_users_are_not_found(
    identity: pb_grpc.IdentityServiceStub,
) -> None:
    other = (await identity.Register(_register("donald"))).user
    admin = (await _login(identity, "root", "root-password")).access_token
    got = await identity.GetUser(pb.GetUserRequest(user_id=other.user_id), metadata=bearer(admin))
    assert got.user.username == "donald"
    with pytest.raises(grpc.RpcError) as caught:
        await identity.GetUser(pb.GetUserRequest(user_id="missing"), metadata=bearer(admin))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_get_user_without_a_token_is_unauthenticated(
    identity: pb_grpc.IdentityServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await identity.GetUser(pb.GetUserRequest(user_id="anyone"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    "kind",
    [
        "expired",
        "wrong_signature",
        "unknown_kid",
        "alg_none",
        "wrong_audience",
        "wrong_issuer",
        "hs256_with_public_key",
        "garbage",
    ],
)
async def test_get_user_with_a_bad_token_is_unauthenticated(
    identity: pb_grpc.IdentityServiceStub, signing_key: SigningKey, kind: str
) -> None:
    user = (await identity.Register(_register())).user
    token = bad_tokens(signing_key, user.user_id)[kind]
    with pytest.raises(grpc.RpcError) as caught:
        await identity.GetUser(pb.GetUserRequest(user_id=user.user_id), metadata=bearer(token))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_jwks_publishes_the_signing_key_without_private_parts(
    identity: pb_grpc.IdentityServiceStub, signing_key: SigningKey
) -> None:
    jwks = await identity.GetJwks(pb.GetJwksRequest())
    assert [k.kid for k in jwks.keys] == [signing_key.kid]
    key = jwks.keys[0]
    assert (key.kty, key.alg, key.crv, key.use) == ("EC", "ES256", "P-256", "sig")
    assert "d" not in {f.name for f, _ in key.ListFields()}


async def test_user_registered_reaches_the_identity_stream(
    tmp: Path, signing_key: SigningKey, redis_url: str
) -> None:
    import asyncio

    from emporium.identity.v1 import events_pb2
    from redis.asyncio import Redis

    from services.platform.bus import decode, stream_name

    client = Redis.from_url(redis_url)
    stream = stream_name("identity")
    before = await client.xlen(stream)
    async with fresh_database("sqlite", tmp, "identity") as url:
        settings = servers.settings_for(
            "identity", url, JWT_SIGNING_KEY_PEM=signing_key.pem(), REDIS_URL=redis_url
        )
        async with servers.serve(identity_main.build, settings) as running:
            stub = pb_grpc.IdentityServiceStub(running.channel)
            user = (await stub.Register(_register())).user
            for _ in range(100):
                if await client.xlen(stream) > before:
                    break
                await asyncio.sleep(0.05)
    entries = await client.xrevrange(stream, count=20)
    await client.aclose()
    events = [decode(fields) for _id, fields in entries]
    mine = [e for e in events if e.aggregate_id == user.user_id]
    assert len(mine) == 1
    assert mine[0].event_type == "emporium.identity.v1.UserRegistered"
    assert events_pb2.UserRegistered.FromString(mine[0].payload).username == user.username
