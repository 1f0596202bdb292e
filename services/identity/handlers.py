"""Identity's use cases."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from emporium.identity.v1 import events_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.identity.domain import CUSTOMER_ROLE, Login, Register, User
from services.identity.passwords import Passwords
from services.identity.repository import UserRepository
from services.identity.tokens import SigningKey, TokenIssuer
from services.platform import auth, outbox
from services.platform.db import Database
from services.platform.errors import AlreadyExists, NotFound, Unauthenticated

STREAM = "identity"


def user_registered(user: User) -> events_pb2.UserRegistered:
    occurred = Timestamp()
    occurred.FromMicroseconds(user.created_at_us)
    return events_pb2.UserRegistered(
        user_id=user.user_id,
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        roles=list(user.roles),
        occur_time=occurred,
    )


def _now_us() -> int:
    return time.time_ns() // 1000


class Identity:
    """Registers users, checks credentials, issues tokens and publishes public keys."""

    def __init__(
        self,
        db: Database,
        passwords: Passwords,
        issuer: TokenIssuer,
        *,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._db = db
        self._passwords = passwords
        self.issuer = issuer
        self._new_id = new_id
        self.verification_keys: list[SigningKey] = [issuer.key]

    async def register(self, command: Register, roles: tuple[str, ...] = (CUSTOMER_ROLE,)) -> User:
        command.validate()
        user = User(
            user_id=self._new_id(),
            username=command.username,
            email=command.email.lower(),
            display_name=command.display_name.strip() or command.username,
            roles=roles,
            created_at_us=_now_us(),
            password_hash=await self._passwords.hash(command.password),
        )
        async with self._db.transaction() as session:
            await UserRepository(session).add(user)
            await outbox.record(session, STREAM, user_registered(user), user.user_id)
        return user

    async def login(self, command: Login) -> tuple[str, User]:
        command.validate()
        async with self._db.transaction() as session:
            user = await UserRepository(session).by_username(command.username)
        ok = await self._passwords.verify(
            None if user is None else user.password_hash, command.password
        )
        if user is None or not ok:
            raise Unauthenticated("unknown username or wrong password")
        return self.issuer.issue(user.user_id, user.username, user.roles), user

    async def get_user(self, user_id: str) -> User:
        caller = auth.current_caller()
        if caller.subject != user_id and not caller.is_admin:
            raise NotFound("no such user")  # other users' existence is not disclosed
        async with self._db.transaction() as session:
            user = await UserRepository(session).get(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    def jwks(self) -> list[dict[str, str]]:
        return [key.public_jwk() for key in self.verification_keys]

    async def ensure_account(
        self, user_id: str, username: str, password: str, roles: tuple[str, ...]
    ) -> None:
        """Creates a bootstrap account (admin, service account) unless it exists."""
        async with self._db.transaction() as session:
            repository = UserRepository(session)
            if await repository.by_username(username) is not None:
                return
            user = User(
                user_id=user_id,
                username=username,
                email=f"{username}@accounts.emporium.invalid",
                display_name=username,
                roles=roles,
                created_at_us=_now_us(),
                password_hash=await self._passwords.hash(password),
            )
            try:
                await repository.add(user)
            except AlreadyExists:
                return


async def load_signing_key(db: Database, pem: str | None) -> SigningKey:
    """The configured key, else the newest key in the database (created on first start)."""
    if pem:
        return SigningKey.from_pem(pem)
    async with db.transaction() as session:
        repository = UserRepository(session)
        pems = await repository.signing_key_pems()
        if pems:
            return SigningKey.from_pem(pems[-1])
        key = SigningKey.generate()
        await repository.add_signing_key(key.kid, key.pem(), _now_us())
        return key
