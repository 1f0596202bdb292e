"""Identity's use cases, on identity's unit of work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

from services.identity.codec import user_registered
from services.identity.domain import ACCOUNTS_DOMAIN, CUSTOMER_ROLE, Login, Register, User
from services.identity.passwords import Passwords
from services.identity.ports import IdentityUnitOfWork
from services.identity.tokens import SigningKey, TokenIssuer
from services.platform import auth
from services.platform.clock import now_us
from services.platform.errors import AlreadyExists, FailedPrecondition, NotFound, Unauthenticated
from services.platform.ids import random_id
from services.platform.lru import Lru


@dataclass(slots=True, eq=False)
class Identity:
    """Registers users, checks credentials, issues tokens and publishes public keys.

    ``reserved`` names (the bootstrap admin's) cannot be registered, nor can service
    account names (``svc-*``): only :meth:`ensure_account` creates those.

    A user, once registered, never changes (no RPC updates or deletes one), so the users
    read or registered here are remembered (up to ``known_users``, least recently used
    first out): reading one again costs no database round trip, and no replica can hold a
    stale copy. An RPC that changes users must forget them here and, through an event,
    on the other replicas.
    """

    uow: IdentityUnitOfWork
    passwords: Passwords
    issuer: TokenIssuer
    _: KW_ONLY
    reserved: frozenset[str] = frozenset()
    new_id: Callable[[], str] = random_id
    clock: Callable[[], int] = now_us
    known_users: int = 4096
    _users: Lru[str, User] = field(init=False)

    def __post_init__(self) -> None:
        self._users = Lru(self.known_users)

    async def register(self, command: Register) -> User:
        command.validate(self.reserved)
        user = User(
            user_id=self.new_id(),
            username=command.username,
            email=command.email.lower(),
            display_name=command.display_name.strip() or command.username,
            roles=(CUSTOMER_ROLE,),
            created_at_us=self.clock(),
            password_hash=await self.passwords.hash(command.password),
        )
        async with self.uow.write() as tx:
            await tx.users.add(user)
            await tx.outbox.record(user_registered(user), user.user_id)
        self._users.put(user.user_id, user)
        return user

    async def login(self, command: Login) -> tuple[str, User]:
        command.validate()
        async with self.uow.read() as tx:
            user = await tx.users.by_username(command.username)
        ok = await self.passwords.verify(
            None if user is None else user.password_hash, command.password
        )
        if user is None or not ok:
            raise Unauthenticated("unknown username or wrong password")
        return self.issuer.issue(user.user_id, user.username, user.roles), user

    async def get_user(self, user_id: str) -> User:
        if not auth.may_read(auth.current_caller(), user_id):
            raise NotFound("no such user")  # other users' existence is not disclosed
        user = self._users.get(user_id)
        if user is None:
            async with self.uow.read() as tx:
                user = await tx.users.get(user_id)
            if user is None:
                raise NotFound("no such user")
            self._users.put(user_id, user)
        return user

    def jwks(self) -> list[dict[str, str]]:
        return [self.issuer.key.public_jwk()]

    async def ensure_account(
        self, user_id: str, username: str, password: str, roles: tuple[str, ...]
    ) -> None:
        """Creates a bootstrap account (admin, service account) unless it exists.

        An existing user of that name must be that very account: another user (say, a
        customer who registered the name before it was reserved) is never adopted, as the
        account would then carry that user's password or roles.
        """
        async with self.uow.read() as tx:
            existing = await tx.users.by_username(username)
        if existing is None:
            user = User(
                user_id=user_id,
                username=username,
                email=f"{username}@{ACCOUNTS_DOMAIN}",
                display_name=username,
                roles=roles,
                created_at_us=self.clock(),
                password_hash=await self.passwords.hash(password),
            )
            try:
                async with self.uow.write() as tx:
                    await tx.users.add(user)
                return
            except AlreadyExists:  # another replica created it meanwhile
                async with self.uow.read() as tx:
                    existing = await tx.users.by_username(username)
        if existing is None or existing.user_id != user_id or set(existing.roles) != set(roles):
            raise FailedPrecondition(
                f"the account name {username!r} belongs to another user; rename that user"
            )


async def load_signing_key(
    uow: IdentityUnitOfWork, pem: str | None, clock: Callable[[], int] = now_us
) -> SigningKey:
    """The configured key, else the newest key in the database (created on first start)."""
    if pem:
        return SigningKey.from_pem(pem)
    async with uow.write() as tx:
        pems = await tx.signing_keys.pems()
        if pems:
            return SigningKey.from_pem(pems[-1])
        key = SigningKey.generate()
        await tx.signing_keys.add(key.kid, key.pem(), clock())
        return key
