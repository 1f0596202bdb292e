"""What identity's handlers need from storage (fakes in tests/support/fakes/identity.py)."""

from __future__ import annotations

from typing import Protocol

from services.identity.domain import User
from services.platform.uow import Tx, UnitOfWork


class Users(Protocol):
    async def add(self, user: User) -> None:
        """Adds ``user``; raises ``AlreadyExists`` when the username or email is taken."""

    async def get(self, user_id: str) -> User | None: ...

    async def by_username(self, username: str) -> User | None: ...


class SigningKeys(Protocol):
    async def pems(self) -> list[str]:
        """Every stored private key (PEM), oldest first."""

    async def add(self, kid: str, pem: str, created_at_us: int) -> None: ...


class IdentityTx(Tx, Protocol):
    """One transaction of identity's unit of work."""

    @property
    def users(self) -> Users: ...

    @property
    def signing_keys(self) -> SigningKeys: ...


IdentityUnitOfWork = UnitOfWork[IdentityTx]
