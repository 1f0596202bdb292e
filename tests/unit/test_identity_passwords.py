"""Argon2id password checks, and the dummy hash that makes unknown users cost the same."""

from __future__ import annotations

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


async def test_an_unknown_user_runs_a_real_check_against_the_profiles_dummy_hash() -> None:
    # What a check costs follows from the hash's parameters (the dummy's equal a real
    # hash's, above), so an unknown user costs what a wrong password does as long as the
    # check really runs, against that dummy, and nothing returns early.
    checked: list[str] = []

    class Recording(argon2.PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            checked.append(str(hash))
            return super().verify(hash, password)

    fast = PROFILES["fast"]
    passwords = Passwords("fast")
    passwords._hasher = Recording(
        time_cost=fast.time_cost, memory_cost=fast.memory_cost, parallelism=fast.parallelism
    )
    assert not await passwords.verify(None, "wrong horse")
    stored = await passwords.hash("correct horse")
    assert not await passwords.verify(stored, "wrong horse")
    assert checked == [DUMMY_HASHES["fast"], stored]
