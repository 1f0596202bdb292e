"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.identity import main as identity_main
from services.identity.tokens import SigningKey
from tests.support import servers
from tests.support.tokens import mint

ADMIN = ("admin", "admin-password")
ORDER_SERVICE_SECRET = "order-service-secret"


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.generate()


@dataclass(frozen=True)
class Tokens:
    key: SigningKey

    def user(self, user_id: str = "user-1") -> str:
        return mint(self.key, user_id, ["customer"])

    @property
    def admin(self) -> str:
        return mint(self.key, "admin:admin", ["admin", "customer"])

    def service(self, name: str = "order") -> str:
        return mint(self.key, f"service:{name}", ["service"])


@pytest.fixture(scope="session")
def tokens(signing_key: SigningKey) -> Tokens:
    return Tokens(signing_key)


@pytest.fixture(scope="session")
async def identity_server(
    tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey
) -> AsyncIterator[servers.Running]:
    """A real identity service (SQLite) whose keys the other services under test trust."""
    tmp = tmp_path_factory.mktemp("identity")
    settings = servers.settings_for(
        "identity",
        f"sqlite+aiosqlite:///{tmp / 'identity.db'}",
        JWT_SIGNING_KEY_PEM=signing_key.pem(),
        BOOTSTRAP_ADMIN=f"{ADMIN[0]}:{ADMIN[1]}",
        SERVICE_CREDENTIALS=f"order:{ORDER_SERVICE_SECRET}",
    )
    async with servers.serve(identity_main.build, settings) as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    return str(request.param)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    """A Redis for the session: ``$REDIS_URL`` (CI's Redis 7) or an embedded redis-server."""
    from tests.support.redis import redis_for_tests

    with redis_for_tests() as url:
        yield url
