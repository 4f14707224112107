"""The business calendar and the timing of SPEC §3, against dates worked out by hand on a paper calendar."""

from __future__ import annotations

from datetime import date

import pytest

from kagi_permissions.domain.calendar import BusinessCalendar, parse_closed_dates
from kagi_permissions.domain.timing import (
    acceptance_date,
    batch_date,
    earliest_acceptance,
    revoke_effective,
    schedule,
)
from kagi_shared.settings import SettingsError, load_settings

CAL = BusinessCalendar()
D = date.fromisoformat


@pytest.mark.parametrize(("day", "business"), [
    ("2026-05-01", True),    # Friday between Showa Day and Constitution Day
    ("2026-05-06", False),   # substitute holiday for Sunday 3 May (Golden Week)
    ("2026-09-22", False),   # citizens' holiday between Respect for the Aged Day and the equinox
    ("2024-02-12", False),   # substitute holiday for Foundation Day on a Sunday
    ("2025-11-24", False),   # substitute holiday for Labour Thanksgiving on a Sunday
    ("2026-12-30", True),    # last business day of the year
    ("2026-12-31", False),   # company closure
    ("2027-01-02", False),   # company closure (and a Saturday)
    ("2026-01-02", False),   # company closure on a Friday
    ("2026-01-05", True),    # first business day of 2026
    ("2026-03-21", False),   # Saturday
    ("2026-03-22", False),   # Sunday
])
def test_business_days(day: str, business: bool) -> None:
    assert CAL.is_business_day(D(day)) is business


# (submitted, accepted, batch date M, TAXIS/JOHS from M+6, JUJU/LOACUS from M+9), all worked out by hand.
WORKED = [
    # Golden Week 2026: accepted 1 May → M = 16 May (Sat) → Mon 18 May
    ("2026-04-30", "2026-05-01", "2026-05-18", "2026-05-26", "2026-05-29"),
    # submitted 1 May: 2–6 May closed (weekend, holidays, substitute) → accepted Thu 7 May
    ("2026-05-01", "2026-05-07", "2026-05-18", "2026-05-26", "2026-05-29"),
    # accepted 30 Apr (29 Apr Showa Day) → M = 1 May; M+6 jumps Golden Week
    ("2026-04-28", "2026-04-30", "2026-05-01", "2026-05-14", "2026-05-19"),
    # year end: accepted 29 Dec → M = 1 Jan closed … Mon 4 Jan 2027; Coming of Age Day 11 Jan skipped
    ("2026-12-28", "2026-12-29", "2027-01-04", "2027-01-13", "2027-01-18"),
    # submitted 30 Dec → closure until 3 Jan → accepted 4 Jan → M = 16 Jan (Sat) → 18 Jan
    ("2026-12-30", "2027-01-04", "2027-01-18", "2027-01-26", "2027-01-29"),
    # Silver Week with a citizens' holiday (21–23 Sep 2026); Sports Day 12 Oct inside M+9
    ("2026-09-18", "2026-09-24", "2026-10-01", "2026-10-09", "2026-10-15"),
    # substitute holiday 24 Nov 2025 → accepted 25 Nov → M = 1 Dec 2025
    ("2025-11-21", "2025-11-25", "2025-12-01", "2025-12-09", "2025-12-12"),
    # Mountain Day 11 Aug; the 16th a Sunday → M = 17 Aug
    ("2026-08-10", "2026-08-12", "2026-08-17", "2026-08-25", "2026-08-28"),
    # February month end → accepted 2 Mar; Vernal Equinox 20 Mar inside M+6
    ("2026-02-27", "2026-03-02", "2026-03-16", "2026-03-25", "2026-03-30"),
    # accepted on the 15th → M is the 16th; Marine Day 20 Jul skipped
    ("2026-07-14", "2026-07-15", "2026-07-16", "2026-07-27", "2026-07-30"),
    # accepted on the 16th → M is the 1st of next month (a Saturday) → Mon 3 Aug; Mountain Day skipped
    ("2026-07-15", "2026-07-16", "2026-08-03", "2026-08-12", "2026-08-17"),
    # submitted on a Saturday → accepted Monday
    ("2026-06-13", "2026-06-15", "2026-06-16", "2026-06-24", "2026-06-29"),
]


@pytest.mark.parametrize(("submitted", "accepted", "batch", "fast", "slow"), WORKED)
def test_schedule_worked_examples(submitted: str, accepted: str, batch: str, fast: str, slow: str) -> None:
    s = schedule(CAL, D(submitted))
    assert (s.accepted_on, s.batch_date) == (D(accepted), D(batch))
    assert s.effective == {"TAXIS": D(fast), "JOHS": D(fast), "JUJU": D(slow), "LOACUS": D(slow)}


def test_configured_closure_moves_the_batch_and_the_dates() -> None:
    closed = BusinessCalendar(parse_closed_dates("2026-05-18"))
    s = schedule(closed, D("2026-04-30"))
    assert s.batch_date == D("2026-05-19")
    assert s.effective["TAXIS"] == D("2026-05-27")
    assert s.effective["JUJU"] == D("2026-06-01")


def test_acceptance_is_never_before_the_earliest_date_nor_on_a_closed_day() -> None:
    assert earliest_acceptance(CAL, D("2026-05-01")) == D("2026-05-07")
    assert acceptance_date(CAL, D("2026-05-01"), today=D("2026-05-01")) == D("2026-05-07")
    assert acceptance_date(CAL, D("2026-05-01"), today=D("2026-05-16")) == D("2026-05-18")
    assert batch_date(CAL, D("2026-05-18")) == D("2026-06-01")


def test_revoke_timing() -> None:
    assert revoke_effective(D("2026-12-31"), "TAXIS") == D("2027-01-01")  # the next calendar day, closed or not
    assert revoke_effective(D("2026-12-31"), "JOHS") == D("2027-01-01")
    assert revoke_effective(D("2026-12-31"), "JUJU") is None  # on recorded completion
    assert revoke_effective(D("2026-12-31"), "LOACUS") is None


def test_closed_dates_setting_under_both_names() -> None:
    assert load_settings({"BUSINESS_CALENDAR_CLOSED_DATES": "2026-12-28, 2026-12-29"}).permissions.closed_dates() \
        == {D("2026-12-28"), D("2026-12-29")}
    assert load_settings({"KAGI_PERMISSIONS_BUSINESS_CALENDAR_CLOSED_DATES": "2026-08-14"}).permissions \
        .closed_dates() == {D("2026-08-14")}
    assert load_settings({}).permissions.closed_dates() == frozenset()


@pytest.mark.parametrize("bad", ["2019-02-30", "tomorrow", "2026/01/05", "2026-01-05;2026-01-06"])
def test_bad_closed_dates_stop_start_up_naming_the_variable(bad: str) -> None:
    with pytest.raises(SettingsError, match="BUSINESS_CALENDAR_CLOSED_DATES"):
        load_settings({"BUSINESS_CALENDAR_CLOSED_DATES": bad})
