"""Invitation keys: what a typed key must look like, and the verdicts on keys, links and co-users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kagi_invite.domain.invitations import (
    ConfirmationLink,
    InvitationKey,
    can_join,
    held,
    judge_key,
    judge_link,
    key_format_problem,
    retry_after_s,
    shown_status,
    voids_after,
)
from kagi_shared import codes

NOW = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)


def key(**changes: object) -> InvitationKey:
    base = {"id": "k1", "owner_id": "o1", "key_hash": "h", "issued_at": NOW - timedelta(minutes=10),
            "expires_at": NOW + timedelta(minutes=50)}
    return InvitationKey(**{**base, **changes})  # type: ignore[arg-type]


def link(**changes: object) -> ConfirmationLink:
    base = {"id": "l1", "email": "a@example.jp", "token_hash": "h", "issued_at": NOW - timedelta(hours=1),
            "expires_at": NOW + timedelta(hours=23)}
    return ConfirmationLink(**{**base, **changes})  # type: ignore[arg-type]


def test_generated_keys_are_twelve_unambiguous_characters_and_differ() -> None:
    keys = {codes.new_code(12) for _ in range(200)}
    assert len(keys) == 200
    for k in keys:
        assert len(k) == 12 and set(k) <= set(codes.UNAMBIGUOUS_ALPHABET)
        assert key_format_problem(k) is None
    assert not set("0O1IL") & set(codes.UNAMBIGUOUS_ALPHABET)


@pytest.mark.parametrize("typed", ["abcd-efgh-jkmn", " ABCD EFGH JKMN ", "abcdEFGHjkmn", "ABCD--EFGH  JKMN"])
def test_case_spaces_and_hyphens_do_not_matter(typed: str) -> None:
    assert key_format_problem(typed) is None
    assert codes.hash_code(typed, "p") == codes.hash_code("ABCDEFGHJKMN", "p")


@pytest.mark.parametrize(("typed", "reason"), [
    ("", "入力してください"),
    ("   --  ", "入力してください"),
    ("ABCDEFGHJKM", "12 文字"),
    ("ABCDEFGHJKMNP", "12 文字"),
    ("ABCDEFGHJKM0", "使用されない文字"),
    ("ABCDEFGHJKM!", "使用されない文字"),
    ("A" * 65, "64 文字以内"),
])
def test_malformed_keys_are_refused_before_any_lookup(typed: str, reason: str) -> None:
    problem = key_format_problem(typed)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(("status", "expected"), [
    ("pending", "ok"), ("redeemed", "redeemed"), ("revoked", "revoked"), ("voided", "voided"),
])
def test_key_verdicts(status: str, expected: str) -> None:
    assert judge_key(key(status=status), NOW) == expected


def test_a_key_expires_sixty_minutes_after_issue_exclusive() -> None:
    assert judge_key(key(expires_at=NOW), NOW) == "expired"
    assert judge_key(key(expires_at=NOW + timedelta(seconds=1)), NOW) == "ok"
    assert shown_status(key(expires_at=NOW), NOW) == "expired"
    # a used key stays "redeemed" after its expiry
    assert shown_status(key(expires_at=NOW, status="redeemed"), NOW) == "redeemed"


def test_a_reservation_holds_only_while_it_lasts() -> None:
    busy = key(status="reserved", reservation_id="r", reserved_until=NOW + timedelta(seconds=30))
    assert judge_key(busy, NOW) == "busy"
    assert shown_status(busy, NOW) == "pending"
    abandoned = key(status="reserved", reservation_id="r", reserved_until=NOW)
    assert judge_key(abandoned, NOW) == "ok"
    assert not held("reserved", None, NOW)


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, "ok"),
    ({"status": "used"}, "used"),
    ({"status": "voided"}, "voided"),
    ({"expires_at": NOW}, "expired"),
    ({"status": "reserved", "reserved_until": NOW + timedelta(seconds=5)}, "busy"),
    ({"status": "reserved", "reserved_until": NOW - timedelta(seconds=5)}, "ok"),
])
def test_link_verdicts(changes: dict[str, object], expected: str) -> None:
    assert judge_link(link(**changes), NOW) == expected


def test_fifth_failure_voids() -> None:
    assert [voids_after(n, 5) for n in range(1, 7)] == [False, False, False, False, True, True]


def test_owner_cannot_join_their_own_household_and_nobody_twice() -> None:
    assert can_join("o1", "o1", False) == "own_key"
    assert can_join("o1", "u1", True) == "already_member"
    assert can_join("o1", "u1", False) == "ok"


def test_retry_after_counts_until_the_blocking_hit_leaves_the_window() -> None:
    assert retry_after_s(NOW - timedelta(seconds=590), 600, NOW) == 10
    assert retry_after_s(NOW - timedelta(seconds=600), 600, NOW) == 1
    assert retry_after_s(NOW - timedelta(seconds=0.2), 600, NOW) == 600
