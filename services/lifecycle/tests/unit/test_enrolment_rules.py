"""The pure rules of 認証情報登録: which URL can be used, when wrong passwords void it, and what a change of an
ID's permissions does to its account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kagi_lifecycle.domain.enrolment import (
    Enrolment,
    access_action,
    b2b_roles,
    judge,
    token_malformed,
    voids_after,
    with_b2b_roles,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def enrolment(**changes: object) -> Enrolment:
    base = Enrolment(id="h", account_id="a", login_id="u@example.jp", otp_hash="o", created_at=NOW - timedelta(days=1),
                     expires_at=NOW + timedelta(days=13))
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_judge_names_the_reason() -> None:
    assert judge(None, NOW) == "unknown"
    assert judge(enrolment(), NOW) == "ok"
    assert judge(enrolment(expires_at=NOW), NOW) == "expired"  # the end instant is already past
    assert judge(enrolment(used_at=NOW), NOW) == "used"
    assert judge(enrolment(voided_at=NOW), NOW) == "voided"
    # Used wins over expired (the holder did enrol), void over expired (the holder needs new mails either way).
    assert judge(enrolment(used_at=NOW, expires_at=NOW - timedelta(days=1)), NOW) == "used"
    assert judge(enrolment(voided_at=NOW, expires_at=NOW - timedelta(days=1)), NOW) == "voided"


def test_the_fifth_wrong_password_voids() -> None:
    assert [voids_after(n, 5) for n in range(1, 7)] == [False, False, False, False, True, True]


def test_token_shape() -> None:
    assert not token_malformed("A" * 43)
    assert token_malformed("A" * 42) and token_malformed("A" * 42 + "/") and token_malformed("")


@pytest.mark.parametrize(("held", "roles"), [
    ({"PMS": "yes"}, {"company_admin"}),
    ({"TAXIS": "1010", "INFOSITE": "yes"}, {"system_user"}),
    ({"PMS": "yes", "JUJU": "yes"}, {"company_admin", "system_user"}),
    ({}, set()),
])
def test_roles_follow_permissions(held: dict[str, str], roles: set[str]) -> None:
    assert b2b_roles(held) == roles


def test_other_roles_are_kept() -> None:
    assert with_b2b_roles(["operator", "company_admin"], {"TAXIS": "1010"}) == ["operator", "system_user"]
    assert with_b2b_roles(["company_admin"], {}) == []


@pytest.mark.parametrize(("status", "gained", "holds_any", "action"), [
    (None, True, True, "enrol"),                 # first permission: a new account waiting for enrolment
    (None, False, True, "none"),                 # a change for an ID lifecycle never saw: nothing to enrol from
    (None, False, False, "none"),
    ("pending_enrolment", True, True, "roles"),  # the request's second system: no second pair of mails
    ("active", True, True, "roles"),
    ("active", False, False, "disable"),         # the last permission gone: login ends at once
    ("locked", False, False, "disable"),
    ("pending_enrolment", False, False, "disable"),
    ("disabled", False, True, "none"),           # a partial revoke after termination does not bring it back
    ("disabled", True, True, "reenrol"),         # a new grant does
    ("purged", True, True, "reenrol"),           # seed 5-7: a purged ID is registered again by a new request
    ("purged", False, False, "none"),
    ("withdrawn", True, True, "none"),
])
def test_access_action(status: str | None, gained: bool, holds_any: bool, action: str) -> None:
    assert access_action(status, gained, holds_any) == action
