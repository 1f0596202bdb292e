"""Identity's handlers on a fake unit of work: no database, no network."""

from __future__ import annotations

import pytest

from services.identity.domain import CUSTOMER_ROLE, Login, Register
from services.identity.handlers import Identity, load_signing_key
from services.identity.passwords import Passwords
from services.identity.ports import IdentityUnitOfWork
from services.identity.tokens import SigningKey, TokenIssuer
from services.platform import auth
from services.platform.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)
from tests.support.fakes.identity import fake_identity_uow

KEY = SigningKey.generate()


def _identity(
    uow: IdentityUnitOfWork, *, reserved: frozenset[str] = frozenset({"root"})
) -> Identity:
    issuer = TokenIssuer(KEY, issuer="emporium", audience="emporium", ttl_seconds=60)
    ids = iter(f"user-{n}" for n in range(100))
    return Identity(
        uow,
        Passwords("fast"),
        issuer,
        reserved=reserved,
        new_id=lambda: next(ids),
        clock=lambda: 1_000,
    )


async def test_register_stores_the_user_and_records_user_registered() -> None:
    uow = fake_identity_uow()
    user = await _identity(uow).register(Register("ada", "Ada@Example.com", "long password", ""))
    assert (user.user_id, user.email, user.display_name, user.roles) == (
        "user-0",
        "ada@example.com",
        "ada",
        (CUSTOMER_ROLE,),
    )
    assert uow.state.users["user-0"] == user
    assert uow.outbox.event_types() == ["UserRegistered"]


async def test_a_duplicate_registration_records_no_event() -> None:
    uow = fake_identity_uow()
    identity = _identity(uow)
    await identity.register(Register("ada", "ada@example.com", "long password", ""))
    with pytest.raises(AlreadyExists):
        await identity.register(Register("ada", "other@example.com", "long password", ""))
    assert len(uow.state.users) == 1
    assert uow.outbox.event_types() == ["UserRegistered"]


@pytest.mark.parametrize("username", ["svc-order", "svc-payment", "root"])
async def test_register_refuses_reserved_names(username: str) -> None:
    uow = fake_identity_uow()
    with pytest.raises(InvalidArgument) as caught:
        await _identity(uow).register(Register(username, "x@example.com", "long password", ""))
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("username", "is reserved")
    ]
    assert uow.writes == 0


async def test_login_issues_a_token_for_the_right_password_only() -> None:
    uow = fake_identity_uow()
    identity = _identity(uow)
    await identity.register(Register("ada", "ada@example.com", "long password", ""))
    token, user = await identity.login(Login("ada", "long password"))
    assert user.username == "ada"
    assert token.count(".") == 2
    with pytest.raises(Unauthenticated):
        await identity.login(Login("ada", "wrong password"))
    with pytest.raises(Unauthenticated):
        await identity.login(Login("nobody", "long password"))


async def test_get_user_hides_other_users_but_not_from_admins() -> None:
    uow = fake_identity_uow()
    identity = _identity(uow)
    user = await identity.register(Register("ada", "ada@example.com", "long password", ""))
    auth.set_caller(auth.Caller("someone-else", "eve", frozenset({CUSTOMER_ROLE})))
    with pytest.raises(NotFound):
        await identity.get_user(user.user_id)
    auth.set_caller(auth.Caller("admin:root", "root", frozenset({auth.ADMIN_ROLE})))
    assert (await identity.get_user(user.user_id)).username == "ada"
    auth.set_caller(None)


async def test_a_user_read_once_is_answered_from_memory_and_still_only_to_its_readers() -> None:
    uow = fake_identity_uow()
    writer, reader = _identity(uow), _identity(uow)  # two replicas of one database
    user = await writer.register(Register("ada", "ada@example.com", "long password", ""))
    auth.set_caller(auth.Caller(user.user_id, "ada", frozenset({CUSTOMER_ROLE})))
    assert await writer.get_user(user.user_id) == user
    assert uow.reads == 0  # registered here: remembered
    assert await reader.get_user(user.user_id) == user
    assert await reader.get_user(user.user_id) == user
    assert uow.reads == 1  # the other replica read it once
    auth.set_caller(auth.Caller("admin:root", "root", frozenset({auth.ADMIN_ROLE})))
    with pytest.raises(NotFound):
        await reader.get_user("user-unknown")
    with pytest.raises(NotFound):
        await reader.get_user("user-unknown")
    assert uow.reads == 3  # an unknown id is not remembered: it may be registered later
    auth.set_caller(auth.Caller("someone-else", "eve", frozenset({CUSTOMER_ROLE})))
    with pytest.raises(NotFound):
        await reader.get_user(user.user_id)
    auth.set_caller(None)


async def test_ensure_account_creates_once_and_is_idempotent() -> None:
    uow = fake_identity_uow()
    identity = _identity(uow)
    await identity.ensure_account("service:order", "svc-order", "secret", ("service",))
    await identity.ensure_account("service:order", "svc-order", "secret", ("service",))
    assert [u.username for u in uow.state.users.values()] == ["svc-order"]
    assert uow.outbox.committed == []  # bootstrap accounts are not announced


async def test_ensure_account_never_adopts_another_users_name() -> None:
    uow = fake_identity_uow()
    before = _identity(uow, reserved=frozenset())  # before "boss" was the admin's name
    await before.register(Register("boss", "boss@example.com", "long password", ""))
    with pytest.raises(FailedPrecondition):
        await _identity(uow).ensure_account("admin:boss", "boss", "pw", ("admin", "customer"))
    assert [u.roles for u in uow.state.users.values()] == [(CUSTOMER_ROLE,)]


async def test_the_signing_key_is_created_once_then_reused() -> None:
    uow = fake_identity_uow()
    first = await load_signing_key(uow, None)
    again = await load_signing_key(uow, None)
    assert first.kid == again.kid
    assert len(uow.state.keys) == 1
    assert (await load_signing_key(uow, KEY.pem())).kid == KEY.kid
