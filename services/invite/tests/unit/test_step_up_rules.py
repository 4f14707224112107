"""The step-up verdicts, in the order a person needs to hear them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kagi_invite.domain.step_up import StepUpCode, judge, valid_until, voids_after

NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


def code(**changes: object) -> StepUpCode:
    base = {"id": "c1", "account_id": "a1", "code_hash": "h", "issued_at": NOW - timedelta(minutes=1),
            "expires_at": NOW + timedelta(minutes=9)}
    return StepUpCode(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "matches", "expected"), [
    ("active", True, "ok"),
    ("active", False, "wrong"),
    ("used", True, "used"),
    ("voided", True, "voided"),
    ("replaced", True, "replaced"),
])
def test_status_decides_before_the_code(status: str, matches: bool, expected: str) -> None:
    assert judge(code(status=status), matches, NOW) == expected


def test_expiry_is_exclusive_at_the_deadline() -> None:
    assert judge(code(expires_at=NOW), True, NOW) == "expired"
    assert judge(code(expires_at=NOW + timedelta(seconds=1)), True, NOW) == "ok"


def test_fifth_wrong_attempt_voids() -> None:
    assert [voids_after(n, 5) for n in range(1, 7)] == [False, False, False, False, True, True]


def test_window_is_fifteen_minutes_from_verification() -> None:
    assert valid_until(NOW, 900) == NOW + timedelta(minutes=15)
