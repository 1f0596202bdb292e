"""Identity's repositories on a database transaction (SQLAlchemy Core, built once)."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, or_, select

from services.identity.codec import user_from_row, user_row
from services.identity.domain import User
from services.identity.tables import signing_keys, users
from services.platform.db import IntegrityViolation
from services.platform.errors import AlreadyExists
from services.platform.uow import SqlRepository, SqlTx

STREAM = "identity"

_CLASH = select(users.c.username).where(
    or_(users.c.username == bindparam("username"), users.c.email == bindparam("email"))
)
_INSERT_USER = insert(users)
_BY_ID = select(users).where(users.c.user_id == bindparam("user_id"))
_BY_USERNAME = select(users).where(users.c.username == bindparam("username"))
_PEMS = select(signing_keys.c.private_pem).order_by(signing_keys.c.created_at_us)
_INSERT_KEY = insert(signing_keys)


class SqlUsers(SqlRepository):
    async def add(self, user: User) -> None:
        clash = await self._tx.fetch_one(_CLASH, {"username": user.username, "email": user.email})
        if clash is not None:
            field = "username" if clash["username"] == user.username else "email"
            raise AlreadyExists(f"a user with this {field} exists")
        try:
            await self._tx.execute(_INSERT_USER, user_row(user))
        except IntegrityViolation as exc:  # a concurrent registration won the race
            raise AlreadyExists("a user with this username or email exists") from exc

    async def get(self, user_id: str) -> User | None:
        row = await self._tx.fetch_one(_BY_ID, {"user_id": user_id})
        return None if row is None else user_from_row(row)

    async def by_username(self, username: str) -> User | None:
        row = await self._tx.fetch_one(_BY_USERNAME, {"username": username})
        return None if row is None else user_from_row(row)


class SqlSigningKeys(SqlRepository):
    async def pems(self) -> list[str]:
        return [row["private_pem"] for row in await self._tx.fetch_all(_PEMS)]

    async def add(self, kid: str, pem: str, created_at_us: int) -> None:
        await self._tx.execute(
            _INSERT_KEY, {"kid": kid, "private_pem": pem, "created_at_us": created_at_us}
        )


class SqlIdentityTx(SqlTx):
    """Identity's repositories in one transaction."""

    stream = STREAM
    users: SqlUsers
    signing_keys: SqlSigningKeys
