"""A fake unit of work for identity's handlers."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.identity.domain import User
from services.platform.errors import AlreadyExists
from tests.support.fakes import FakeOutbox, FakeRepository, FakeTx, FakeUnitOfWork


@dataclass
class IdentityState:
    users: dict[str, User] = field(default_factory=dict)
    keys: list[tuple[int, str, str]] = field(default_factory=list)


class FakeUsers(FakeRepository[IdentityState]):
    async def add(self, user: User) -> None:
        for other in self._state.users.values():
            if other.username == user.username:
                raise AlreadyExists("a user with this username exists")
            if other.email == user.email:
                raise AlreadyExists("a user with this email exists")
        self._state.users[user.user_id] = user

    async def get(self, user_id: str) -> User | None:
        return self._state.users.get(user_id)

    async def by_username(self, username: str) -> User | None:
        return next((u for u in self._state.users.values() if u.username == username), None)


class FakeSigningKeys(FakeRepository[IdentityState]):
    async def pems(self) -> list[str]:
        return [pem for _, _, pem in sorted(self._state.keys)]

    async def add(self, kid: str, pem: str, created_at_us: int) -> None:
        self._state.keys.append((created_at_us, kid, pem))


class FakeIdentityTx(FakeTx):
    def __init__(self, state: IdentityState, outbox: FakeOutbox) -> None:
        super().__init__(outbox)
        self.users = FakeUsers(state)
        self.signing_keys = FakeSigningKeys(state)


def fake_identity_uow() -> FakeUnitOfWork[IdentityState, FakeIdentityTx]:
    return FakeUnitOfWork(IdentityState(), FakeIdentityTx)
