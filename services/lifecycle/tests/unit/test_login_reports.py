"""External login reports (SPEC §4): every report is a login; last login only moves forward."""

from datetime import UTC, datetime, timedelta

from kagi_lifecycle.domain.accounts import judge_login_report

AT = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def test_a_first_report_is_recorded_and_starts_the_period() -> None:
    decision = judge_login_report("active", None, AT)
    assert decision.record and decision.moves_last_login


def test_a_late_report_after_a_later_password_login_is_recorded_without_moving_last_login() -> None:
    decision = judge_login_report("active", AT + timedelta(minutes=5), AT)
    assert decision.record and not decision.moves_last_login


def test_two_reports_at_the_same_moment_are_both_logins_but_move_nothing_twice() -> None:
    decision = judge_login_report("active", AT, AT)
    assert decision.record and not decision.moves_last_login


def test_a_locked_account_still_records_its_login_and_a_purged_one_does_not() -> None:
    assert judge_login_report("locked", None, AT).record
    purged = judge_login_report("purged", None, AT)
    assert not purged.record and not purged.moves_last_login
