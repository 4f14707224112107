"""Self-registration links and the password-hashing line, without a database."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from kagi_lifecycle.adapters.passwords import Passwords, hashing_slots
from kagi_lifecycle.domain.registration import Registration, judge, token_malformed
from kagi_shared.problems import Problem
from kagi_shared.settings import SecuritySettings

NOW = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
CHEAP = {"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1}


def link(**changes: object) -> Registration:
    fields: dict[str, object] = {"id": "h", "registration_id": "r", "email": "a@example.jp", "login_id": "a@example.jp",
                                 "created_at": NOW, "expires_at": NOW + timedelta(days=1), **changes}
    return Registration(**fields)  # type: ignore[arg-type]


def test_mailed_tokens_are_well_formed_and_anything_else_is_not() -> None:
    assert not token_malformed(secrets.token_urlsafe(32))
    for token in ("", "abc", "A" * 42, "A" * 44, "A" * 42 + "!", "A" * 42 + " "):
        assert token_malformed(token)


def test_a_link_is_unknown_used_expired_or_ok() -> None:
    assert judge(None, NOW) == "unknown"
    assert judge(link(), NOW) == "ok"
    assert judge(link(), NOW + timedelta(days=1)) == "expired"
    assert judge(link(used_at=NOW), NOW) == "used"
    assert judge(link(used_at=NOW, replaced=True), NOW + timedelta(days=2)) == "used"


def test_hashes_at_once_follow_the_cores_and_the_lanes_of_one_hash() -> None:
    assert hashing_slots(SecuritySettings(argon2_concurrency=3)) == 3
    assert hashing_slots(SecuritySettings(argon2_parallelism=4)) >= 1
    one_lane, four_lanes = SecuritySettings(argon2_parallelism=1), SecuritySettings(argon2_parallelism=4)
    assert hashing_slots(one_lane) >= hashing_slots(four_lanes)


async def test_a_hash_that_waited_past_its_budget_is_refused_as_busy() -> None:
    assert await Passwords(SecuritySettings(**CHEAP)).verify(None, "anything") is False  # type: ignore[arg-type]
    busy = Passwords(SecuritySettings(**CHEAP, argon2_max_wait_s=-1.0))  # type: ignore[arg-type]
    with pytest.raises(Problem) as caught:
        await busy.hash("Kagi-test-2026!")
    assert (caught.value.status, caught.value.code, caught.value.headers) == (503, "service.busy", {"Retry-After": "5"})
