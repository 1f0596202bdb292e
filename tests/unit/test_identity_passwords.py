"""Argon2id password checks, and the dummy hash that makes unknown users cost the same."""

from __future__ import annotations

import time

import argon2
import pytest

from services.identity.passwords import DUMMY_HASHES, PROFILES, Passwords


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_profiles_dummy_hash_has_that_profiles_parameters(profile: str) -> None:
    # What verifying costs comes from the hash's parameters: equal parameters, equal cost.
    hasher = PROFILES[profile]
    dummy = argon2.extract_parameters(DUMMY_HASHES[profile])
    fresh = argon2.extract_parameters(hasher.hash("a password"))
    assert dummy == fresh


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_dummy_hash_is_a_valid_hash_of_the_equaliser(profile: str) -> None:
    assert PROFILES[profile].verify(DUMMY_HASHES[profile], "emporium-timing-equaliser")


async def test_the_right_password_verifies_and_a_wrong_one_does_not() -> None:
    passwords = Passwords("fast")
    stored = await passwords.hash("correct horse")
    assert await passwords.verify(stored, "correct horse")
    assert not await passwords.verify(stored, "wrong horse")


async def test_an_unknown_user_never_verifies_even_with_the_equalisers_password() -> None:
    passwords = Passwords("fast")
    assert not await passwords.verify(None, "emporium-timing-equaliser")
    assert not await passwords.verify(None, "anything")


async def test_a_malformed_stored_hash_does_not_verify() -> None:
    assert not await Passwords("fast").verify("not-a-hash", "anything")


async def test_an_unknown_user_costs_about_as_much_as_a_wrong_password() -> None:
    passwords = Passwords("fast")
    stored = await passwords.hash("correct horse")

    async def fastest(password_hash: str | None) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            await passwords.verify(password_hash, "wrong horse")
            times.append(time.perf_counter() - started)
        return min(times)

    ratio = await fastest(None) / await fastest(stored)
    # Equal parameters cost the same; the standard dummy would be 30 times a fast check.
    assert 0.5 < ratio < 2.0
