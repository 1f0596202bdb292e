"""Public keys are cached, refreshed on rotation and refetched at a bounded rate, fetched
one at a time, served stale (for a bounded time) while identity is slow or down; verified
tokens are remembered until they expire."""

from __future__ import annotations

import asyncio
import time
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
        self.answering = asyncio.Event()
        self.answering.set()

    async def fetch(self) -> Sequence[Mapping[str, str]]:
        self.fetches += 1
        await self.answering.wait()  # cleared: identity hangs (SIGSTOP, say)
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


async def test_concurrent_requests_share_one_fetch() -> None:
    key = SigningKey.generate()
    identity = FakeIdentity(key)
    identity.answering.clear()
    verifier = TokenVerifier(JwksCache(identity.fetch), issuer=ISSUER, audience=AUDIENCE)
    calls = [asyncio.ensure_future(verifier.verify(mint(key, f"u{i}", []))) for i in range(20)]
    await asyncio.sleep(0.01)
    identity.answering.set()
    callers = await asyncio.gather(*calls)
    assert {c.subject for c in callers} == {f"u{i}" for i in range(20)}
    assert identity.fetches == 1


async def test_stale_keys_are_served_at_once_while_a_hung_identity_is_asked_again() -> None:
    key = SigningKey.generate()
    identity, clock = FakeIdentity(key), Clock()
    cache = JwksCache(identity.fetch, clock=clock, ttl_seconds=300, fetch_timeout=30)
    verifier = TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE)
    await verifier.verify(mint(key, "u", []))
    identity.answering.clear()
    clock.now += 301
    started = time.monotonic()
    for i in range(10):  # fresh tokens: each needs the key
        caller = await asyncio.wait_for(verifier.verify(mint(key, f"user-{i}", [])), 1.0)
        assert caller.subject == f"user-{i}"
    assert time.monotonic() - started < 1.0
    assert cache.fetching
    assert identity.fetches == 2  # one revalidation, however many requests
    identity.answering.set()
    for _ in range(100):
        if not cache.fetching:
            break
        await asyncio.sleep(0.01)
    assert not cache.fetching


async def test_keys_are_trusted_for_an_hour_after_identity_last_answered() -> None:
    key = SigningKey.generate()
    identity, clock = FakeIdentity(key), Clock()
    cache = JwksCache(identity.fetch, clock=clock, min_refresh_seconds=5)
    verifier = TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE, cache_size=0)
    await verifier.verify(mint(key, "u", []))
    identity.down = True
    clock.now += 3599
    assert (await verifier.verify(mint(key, "u", []))).subject == "u"
    clock.now += 2
    with pytest.raises(Unauthenticated, match="signing keys are unavailable"):
        await verifier.verify(mint(key, "u", []))
    fetches = identity.fetches
    with pytest.raises(Unauthenticated):  # and identity is not asked again at once
        await verifier.verify(mint(key, "u", []))
    assert identity.fetches == fetches
    identity.down = False
    clock.now += 5
    assert (await verifier.verify(mint(key, "u", []))).subject == "u"


async def test_a_hung_identity_costs_a_request_at_most_the_fetch_timeout() -> None:
    identity = FakeIdentity(SigningKey.generate())
    identity.answering.clear()
    verifier = TokenVerifier(
        JwksCache(identity.fetch, fetch_timeout=0.1), issuer=ISSUER, audience=AUDIENCE
    )
    started = time.monotonic()
    with pytest.raises(Unauthenticated):
        await verifier.verify(mint(identity.keys[0], "u", []))
    assert time.monotonic() - started < 1.0


class WallClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_verified_token_is_remembered_until_it_expires() -> None:
    key = SigningKey.generate()
    identity, clock, wall = FakeIdentity(key), Clock(), WallClock()
    cache = JwksCache(identity.fetch, clock=clock)
    verifier = TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE, clock=wall)
    token = mint(key, "u", [], exp=int(wall.now) + 60)
    await verifier.verify(token)
    identity.down = True
    clock.now += 7200  # the keys are long past trusting: only the memory answers
    assert (await verifier.verify(token)).subject == "u"
    wall.now += 61
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)


async def test_the_memory_of_verified_tokens_is_bounded() -> None:
    key = SigningKey.generate()
    identity, clock = FakeIdentity(key), Clock()
    verifier = TokenVerifier(
        JwksCache(identity.fetch, clock=clock), issuer=ISSUER, audience=AUDIENCE, cache_size=2
    )
    first, second, third = (mint(key, name, []) for name in ("a", "b", "c"))
    for token in (first, second, first, third):  # "b" is the least recently used
        await verifier.verify(token)
    identity.down = True
    clock.now += 7200
    assert (await verifier.verify(first)).subject == "a"
    assert (await verifier.verify(third)).subject == "c"
    with pytest.raises(Unauthenticated):
        await verifier.verify(second)
