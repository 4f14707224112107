"""argon2id hashing off the event loop, on a small pool of its own (argon2-cffi releases the GIL while hashing)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kagi_shared.problems import Problem
from kagi_shared.settings import SecuritySettings

T = TypeVar("T")


def hashing_slots(security: SecuritySettings) -> int:
    if security.argon2_concurrency > 0:
        return int(security.argon2_concurrency)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, int(security.argon2_parallelism)))


class Passwords:
    def __init__(self, security: SecuritySettings) -> None:
        self.hasher = PasswordHasher(
            time_cost=security.argon2_time_cost,
            memory_cost=security.argon2_memory_kib,
            parallelism=security.argon2_parallelism,
        )
        # Not the loop's default executor: with one thread per request there, concurrent sign-ups ran
        # every hash at once on the same cores, so each took as long as all of them together and the
        # loop thread (which also answers the gateway's session checks) waited behind their lanes.
        self._pool = ThreadPoolExecutor(hashing_slots(security), thread_name_prefix="argon2")
        self.max_wait_s = security.argon2_max_wait_s
        # Verified against when the ID is unknown, so both cases take the same time.
        self._dummy = self.hasher.hash("kagi-timing-equaliser")

    async def _run(self, fn: Callable[[], T]) -> T:
        queued = time.monotonic()

        def job() -> T | None:
            if time.monotonic() - queued > self.max_wait_s:
                return None
            return fn()

        result = await asyncio.get_running_loop().run_in_executor(self._pool, job)
        if result is None:
            raise Problem(503, "service.busy", "ただいま混み合っています。しばらくしてから再度お試しください。",
                          headers={"Retry-After": "5"})
        return result

    async def hash(self, password: str) -> str:
        return await self._run(lambda: self.hasher.hash(password))

    def needs_rehash(self, stored: str) -> bool:
        """The hash was made with other parameters than today's (parsing only, no hashing)."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return False

    async def verify(self, stored: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self.hasher.verify(stored or self._dummy, password) and stored is not None
            except (VerificationError, InvalidHashError):
                return False

        return await self._run(check)
