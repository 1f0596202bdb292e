"""Public keys are cached, refreshed on rotation, and refetched at a bounded rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from services.identity.tokens import SigningKey
from services.platform.auth import JwksCache, TokenVerifier
from services.platform.errors import Unauthenticated
from tests.support.tokens import AUDIENCE, ISSUER, mint


class FakeIdentity:
    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.down = False

    async def fetch(self) -> Sequence[Mapping[str, str]]:
        self.fetches += 1
        if self.down:
            raise ConnectionError("identity is down")
        return [k.public_jwk() for k in self.keys]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_keys_are_fetched_once_and_then_served_from_cache() -> None:
    key = SigningKey.generate()
    identity, clock = FakeIdentity(key), Clock()
    verifier = TokenVerifier(
        JwksCache(identity.fetch, clock=clock), issuer=ISSUER, audience=AUDIENCE
    )
    for _ in range(5):
        caller = await verifier.verify(mint(key, "user-1", ["customer"]))
    assert caller.subject == "user-1"
    assert identity.fetches == 1


async def test_a_rotated_key_is_picked_up_but_forged_kids_do_not_hammer_identity() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    identity, clock = FakeIdentity(old), Clock()
    cache = JwksCache(identity.fetch, clock=clock, min_refresh_seconds=5)
    verifier = TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE)
    await verifier.verify(mint(old, "u", []))
    identity.keys.append(new)
    with pytest.raises(Unauthenticated):  # within the refresh interval: no refetch
        await verifier.verify(mint(new, "u", []))
    assert identity.fetches == 1
    clock.now += 6
    assert (await verifier.verify(mint(new, "u", []))).subject == "u"
    assert identity.fetches == 2


async def test_cached_keys_keep_working_while_identity_is_down() -> None:
    key = SigningKey.generate()
    identity, clock = FakeIdentity(key), Clock()
    verifier = TokenVerifier(
        JwksCache(identity.fetch, clock=clock, ttl_seconds=10), issuer=ISSUER, audience=AUDIENCE
    )
    await verifier.verify(mint(key, "u", []))
    identity.down = True
    clock.now += 60
    assert (await verifier.verify(mint(key, "u", []))).subject == "u"


async def test_no_keys_at_all_is_unauthenticated() -> None:
    identity = FakeIdentity()
    identity.down = True
    verifier = TokenVerifier(JwksCache(identity.fetch), issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(Unauthenticated):
        await verifier.verify(mint(SigningKey.generate(), "u", []))
