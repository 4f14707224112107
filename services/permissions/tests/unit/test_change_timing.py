"""Seed 5-2: when a change request's parts apply. The system accepts the change itself on the submission
date; TAXIS/JOHS are immediate; JUJU/LOACUS go in the batch whose M follows from the submission date
(1st–15th → the 16th, 16th–end → the 1st of the next month, moved to the next business day).
Dates checked by hand against the 2026/2027 calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kagi_permissions.domain import requests as rules
from kagi_permissions.domain.calendar import BusinessCalendar
from kagi_permissions.domain.timing import batch_date, change_batch_date, effective_from_batch

CAL = BusinessCalendar()
D = date.fromisoformat


@pytest.mark.parametrize(("submitted", "batch"), [
    ("2026-06-15", "2026-06-16"),  # the 15th: this month's 16th (a Tuesday)
    ("2026-06-16", "2026-07-01"),  # the 16th: the 1st of next month (a Wednesday)
    ("2026-05-01", "2026-05-18"),  # 16 May 2026 is a Saturday: M moves to Monday the 18th
    ("2026-12-31", "2027-01-04"),  # a closure day: counts as the 31st; 1 Jan is closed, M is 4 Jan
    ("2027-01-02", "2027-01-18"),  # a closure day (Saturday) in the first half: the 16th is a Saturday → 18th
    ("2026-08-15", "2026-08-17"),  # a Saturday on the 15th still counts for the first half (16th is Sunday)
])
def test_batch_date_follows_from_the_submission_date(submitted: str, batch: str) -> None:
    assert change_batch_date(CAL, D(submitted)) == D(batch)


def test_a_closure_day_submission_is_not_moved_to_the_next_business_day_first() -> None:
    # Accepting on the next business day (as for a new request) would give the same M here only by chance:
    # 2026-06-15 (Mon) is fine, but a submission on Sunday 2026-03-15 belongs to the first half of March.
    assert change_batch_date(CAL, D("2026-03-15")) == D("2026-03-16")
    assert batch_date(CAL, CAL.next_business_day(D("2026-03-15"))) == D("2026-04-01")


def _change(submitted: str, before: dict[str, str | None], after: dict[str, str | None]) -> rules.PermissionRequest:
    systems = rules.plan("change", before, after, D(submitted))
    request = rules.PermissionRequest(
        id="r1", company_id="c1", kind="change", user_id="u@example.jp", user_key="u@example.jp", name_kanji="利用 者",
        name_kana="リヨウ シャ", filed_by="admin@example.jp", status=rules.initial_status("change", systems),
        submitted_at=datetime(2026, 1, 1, tzinfo=UTC), submitted_on=D(submitted), systems=systems)
    if request.status == "accepted":
        batch = change_batch_date(CAL, D(submitted))
        rules.accept_by_system(request, batch, {s.system: effective_from_batch(CAL, batch, s.system)
                                                for s in systems if s.timing == "batch"})
    return request


def test_taxis_and_johs_changes_are_routed_at_once_and_need_no_acceptance() -> None:
    request = _change("2026-06-16", {"TAXIS": "1010", "JOHS": None}, {"TAXIS": "1011", "JOHS": "J1010"})
    assert request.status == "in_progress"
    assert [(s.system, s.timing, s.effective_on) for s in request.systems] == [
        ("TAXIS", "immediate", D("2026-06-16")), ("JOHS", "immediate", D("2026-06-16"))]
    assert request.batch_date is None


def test_mixed_change_routes_taxis_now_and_juju_in_the_batch_of_the_submission_date() -> None:
    request = _change("2026-06-15", {"TAXIS": "1010"}, {"TAXIS": "1011", "JUJU": "yes"})
    assert (request.status, request.accepted_on, request.batch_date) == ("accepted", D("2026-06-15"), D("2026-06-16"))
    timing = {s.system: (s.timing, s.effective_on) for s in request.systems}
    assert timing["TAXIS"] == ("immediate", D("2026-06-15"))
    # M + 9 business days for JUJU (5-1 timing): 16 Jun + 9 → 29 Jun 2026.
    assert timing["JUJU"] == ("batch", D("2026-06-29"))


def test_the_operator_acceptance_is_refused_for_a_change_the_system_accepted() -> None:
    request = _change("2026-06-16", {"LOACUS": "02011"}, {"LOACUS": "02010"})
    assert request.batch_date == D("2026-07-01")
    with pytest.raises(Exception, match="受付できません"):
        rules.accept(request, D("2026-06-17"), D("2026-07-01"))
