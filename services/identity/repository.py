"""Identity's tables and repository (SQLAlchemy Core over the service's own database)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import User
from services.platform.errors import AlreadyExists

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("roles", String(200), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)


def _user(row: object) -> User:
    mapping = row._mapping  # type: ignore[attr-defined]
    return User(
        user_id=mapping["user_id"],
        username=mapping["username"],
        email=mapping["email"],
        display_name=mapping["display_name"],
        roles=tuple(r for r in mapping["roles"].split(",") if r),
        created_at_us=mapping["created_at_us"],
        password_hash=mapping["password_hash"],
    )


class UserRepository:
    """Users and signing keys, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, user: User) -> None:
        clash = await self._session.execute(
            select(users.c.username, users.c.email).where(
                (users.c.username == user.username) | (users.c.email == user.email)
            )
        )
        for username, _email in clash:
            field = "username" if username == user.username else "email"
            raise AlreadyExists(f"a user with this {field} exists")
        try:
            async with self._session.begin_nested():
                await self._session.execute(
                    insert(users).values(
                        user_id=user.user_id,
                        username=user.username,
                        email=user.email,
                        display_name=user.display_name,
                        roles=",".join(user.roles),
                        password_hash=user.password_hash,
                        created_at_us=user.created_at_us,
                    )
                )
        except IntegrityError as exc:  # a concurrent registration won the race
            raise AlreadyExists("a user with this username or email exists") from exc

    async def get(self, user_id: str) -> User | None:
        row = (await self._session.execute(select(users).where(users.c.user_id == user_id))).first()
        return None if row is None else _user(row)

    async def by_username(self, username: str) -> User | None:
        result = await self._session.execute(select(users).where(users.c.username == username))
        row = result.first()
        return None if row is None else _user(row)

    async def signing_key_pems(self) -> list[str]:
        result = await self._session.execute(
            select(signing_keys.c.private_pem).order_by(signing_keys.c.created_at_us)
        )
        return [pem for (pem,) in result]

    async def add_signing_key(self, kid: str, pem: str, created_at_us: int) -> None:
        await self._session.execute(
            insert(signing_keys).values(kid=kid, private_pem=pem, created_at_us=created_at_us)
        )
