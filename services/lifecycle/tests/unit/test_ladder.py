"""The inactivity ladder's arithmetic: Japan dates, the seed's example, boundaries, missed sweeps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kagi_lifecycle.domain import ladder
from kagi_lifecycle.domain.ladder import LadderDays, due_stage, ladder_for, next_stage
from kagi_lifecycle.service.sweep import next_sweep_at, parse_as_of
from kagi_shared.jst import JST


def test_the_seeds_example_dates() -> None:
    # Seed 5-7: last login 2019/04/01 → log in by 2019/09/27 (lock date − 1), unlock by 2019/10/27 (purge − 1).
    plan = ladder_for(date(2019, 4, 1))
    assert plan.login_deadline == date(2019, 9, 27)
    assert plan.unlock_deadline == date(2019, 10, 27)
    assert plan.as_json() == {
        "warning1": "2019-07-30", "warning2": "2019-08-29", "lock": "2019-09-28", "purge": "2019-10-28",
        "loginDeadline": "2019-09-27", "unlockDeadline": "2019-10-27",
    }


def test_the_base_date_is_the_japan_date_of_the_login() -> None:
    # 2019-03-31 23:30 UTC is 2019-04-01 08:30 in Tokyo: the base date is April 1st.
    assert ladder.japan_date(datetime(2019, 3, 31, 23, 30, tzinfo=UTC)) == date(2019, 4, 1)
    # 2019-04-01 14:59 UTC is 23:59 in Tokyo, still April 1st; 15:00 UTC is April 2nd.
    assert ladder.japan_date(datetime(2019, 4, 1, 14, 59, tzinfo=UTC)) == date(2019, 4, 1)
    assert ladder.japan_date(datetime(2019, 4, 1, 15, 0, tzinfo=UTC)) == date(2019, 4, 2)


def test_a_stage_is_due_from_midnight_japan_time_of_its_date() -> None:
    plan = ladder_for(date(2019, 4, 1))
    nxt = next_stage(plan, None)
    assert nxt is not None and nxt.stage == "warning1"
    assert nxt.due_at == datetime(2019, 7, 30, 0, 0, tzinfo=JST)
    assert nxt.due_at == datetime(2019, 7, 29, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(("elapsed", "expected"), [
    (0, None), (119, None), (120, "warning1"), (121, "warning1"), (149, "warning1"),
    (150, "warning2"), (179, "warning2"), (180, "lock"), (209, "lock"), (210, "purge"), (400, "purge"),
])
def test_the_highest_due_stage_by_elapsed_days(elapsed: int, expected: str | None) -> None:
    base = date(2026, 1, 10)
    assert due_stage(ladder_for(base), None, base + timedelta(days=elapsed)) == expected


def test_each_stage_happens_once_per_period() -> None:
    base = date(2026, 1, 10)
    plan = ladder_for(base)
    assert due_stage(plan, "warning1", base + timedelta(days=120)) is None
    assert due_stage(plan, "warning1", base + timedelta(days=149)) is None
    assert due_stage(plan, "warning1", base + timedelta(days=150)) == "warning2"
    assert due_stage(plan, "lock", base + timedelta(days=209)) is None
    assert due_stage(plan, "purge", base + timedelta(days=999)) is None


def test_missed_sweeps_apply_only_the_highest_due_stage_and_the_schedule_skips_ahead() -> None:
    base = date(2026, 1, 10)
    plan = ladder_for(base)
    # Nothing ran for 185 days: lock directly, the two warnings are never sent.
    assert due_stage(plan, None, base + timedelta(days=185)) == "lock"
    upcoming = next_stage(plan, "lock")
    assert upcoming is not None and upcoming.stage == "purge"
    assert next_stage(plan, "purge") is None


def test_clock_moving_backwards_finds_nothing_due() -> None:
    base = date(2026, 1, 10)
    assert due_stage(ladder_for(base), None, base - timedelta(days=5)) is None
    assert due_stage(ladder_for(base), "warning2", base + timedelta(days=121)) is None


def test_leap_years_and_month_ends_are_plain_calendar_days() -> None:
    plan = ladder_for(date(2024, 1, 31))  # 2024 is a leap year: Feb has 29 days
    assert plan.warning1 == date(2024, 5, 30)
    assert plan.lock == date(2024, 7, 29)
    assert ladder_for(date(2025, 12, 31)).warning1 == date(2026, 4, 30)


def test_ladder_days_are_settings_but_must_increase() -> None:
    assert ladder_for(date(2026, 1, 1), LadderDays(1, 2, 3, 4)).purge == date(2026, 1, 5)
    with pytest.raises(ValueError, match="must increase"):
        LadderDays(120, 120, 180, 210)


def test_base_moment_is_the_issue_time_when_never_logged_in() -> None:
    issued = datetime(2026, 1, 1, tzinfo=UTC)
    login = datetime(2026, 2, 1, tzinfo=UTC)
    assert ladder.base_moment(None, issued) == issued
    assert ladder.base_moment(login, issued) == login


def test_the_next_sweep_is_at_seven_in_the_morning_japan_time() -> None:
    # 06:59 JST → the same day's 07:00; 07:00 JST exactly → the next day's.
    before = datetime(2026, 5, 1, 6, 59, tzinfo=JST).astimezone(UTC)
    assert next_sweep_at(before, "0 7 * * *") == datetime(2026, 5, 1, 7, 0, tzinfo=JST)
    at = datetime(2026, 5, 1, 7, 0, tzinfo=JST).astimezone(UTC)
    assert next_sweep_at(at, "0 7 * * *") == datetime(2026, 5, 2, 7, 0, tzinfo=JST)
    assert next_sweep_at(at, "0 7 * * *").tzinfo == UTC


def test_as_of_without_offset_is_japan_time_and_a_bare_date_means_its_sweep() -> None:
    assert parse_as_of("2026-05-01") == datetime(2026, 5, 1, 7, 0, tzinfo=JST)
    assert parse_as_of("2026-05-01T06:00") == datetime(2026, 5, 1, 6, 0, tzinfo=JST)
    assert parse_as_of("2026-05-01T00:00+00:00") == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a date"):
        parse_as_of("yesterday")
