"""argon2id hashing off the event loop (argon2-cffi releases the GIL while hashing)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kagi_shared.settings import SecuritySettings


class Passwords:
    def __init__(self, security: SecuritySettings) -> None:
        self.hasher = PasswordHasher(
            time_cost=security.argon2_time_cost,
            memory_cost=security.argon2_memory_kib,
            parallelism=security.argon2_parallelism,
        )
        # Verified against when the ID is unknown, so both cases take the same time.
        self._dummy = self.hasher.hash("kagi-timing-equaliser")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self.hasher.verify(stored or self._dummy, password) and stored is not None
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)
