"""Supply-point numbers, viewer-key verdicts, contract versions and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kagi_invite.domain.locations import (
    ViewerKey,
    can_view,
    judge_viewer_key,
    newer,
    page_bounds,
    supply_point_number,
    supply_point_problem,
)

NOW = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize("typed", ["0300111200000100000000", "0300-1112-00-0001-0000-0000", "03001112 0000010 0000000"])
def test_twenty_two_digits_grouped_any_way(typed: str) -> None:
    assert supply_point_problem(typed) is None
    assert supply_point_number(typed) == "0300111200000100000000"


@pytest.mark.parametrize(("typed", "reason"), [
    ("030011120000010000000", "22 桁"),
    ("03001112000001000000000", "22 桁"),
    ("", "半角数字"),
    ("03001112000001000000AB", "半角数字"),
    ("０３００１１１２０００００１００００００００", "半角数字"),  # full-width digits
])
def test_wrong_supply_point_numbers(typed: str, reason: str) -> None:
    problem = supply_point_problem(typed)
    assert problem is not None and reason in problem


def key(**changes: object) -> ViewerKey:
    base = {"id": "v1", "owner_id": "o1", "location_id": "l1", "key_hash": "h", "issued_at": NOW - timedelta(hours=1),
            "expires_at": NOW + timedelta(hours=23)}
    return ViewerKey(**{**base, **changes})  # type: ignore[arg-type]


def test_viewer_key_verdicts() -> None:
    assert judge_viewer_key(key(), NOW) == "ok"
    assert judge_viewer_key(key(expires_at=NOW), NOW) == "expired"
    assert judge_viewer_key(key(status="redeemed", expires_at=NOW), NOW) == "redeemed"
    assert judge_viewer_key(key(status="revoked"), NOW) == "revoked"


def test_nobody_views_their_own_location_or_twice() -> None:
    assert can_view("o1", "o1", False) == "own_location"
    assert can_view("o1", "v1", True) == "already_viewer"
    assert can_view("o1", "v1", False) == "ok"


def test_an_older_contract_version_never_overwrites_a_newer_one() -> None:
    assert newer(None, 1)
    assert newer(2, 2) and newer(2, 3)
    assert not newer(3, 2)


def test_pages_are_one_based_and_clamped() -> None:
    assert page_bounds(1, 10) == (0, 10)
    assert page_bounds(3, 10) == (20, 10)
    assert page_bounds(0, 0) == (0, 1)
    assert page_bounds(2, 1000) == (100, 100)
