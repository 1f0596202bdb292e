"""Password hashing with Argon2id, a memory-hard KDF."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: ``standard`` follows RFC 9106's second recommended profile (64 MiB, t=3);
#: ``fast`` exists only so test suites can create many users quickly.
PROFILES = {
    "standard": PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1),
    "fast": PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),
}

#: A hash to verify against when the user does not exist, so a login for an unknown name
#: costs as much as one with a wrong password (no user enumeration by timing). What a
#: verification costs comes from the parameters in the hash, so a constant does it: each
#: is ``PROFILES[name].hash("emporium-timing-equaliser")``, computed once, not at every
#: start (a quarter of a second of CPU on the standard profile).
DUMMY_HASHES = {
    "standard": "$argon2id$v=19$m=65536,t=3,p=1$1agZjxm2pfIt2SFdID5bOw"
    "$2UDHAsgAwJVT7dQL3Gu3eMSBRn8q+FojvNZoN9vZVSQ",
    "fast": "$argon2id$v=19$m=8192,t=1,p=1$DjpCjThJPe2NobWhjx8TPA"
    "$5Q/Mgl+Tom7PKdBoz52PzGS6b9GV88A53Lq8x/axUAo",
}


class Passwords:
    """Hashes and checks passwords off the event loop."""

    def __init__(self, profile: str = "standard") -> None:
        self._hasher = PROFILES[profile]
        self._dummy = DUMMY_HASHES[profile]

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash or self._dummy, password) and bool(
                    password_hash
                )
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)
