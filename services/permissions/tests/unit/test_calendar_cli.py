"""``kagi calendar schedule`` prints the schedule JSON and honours BUSINESS_CALENDAR_CLOSED_DATES."""

from __future__ import annotations

import json

import pytest

from kagi_cli.main import main
from kagi_shared.settings import get_settings


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    get_settings.cache_clear()
    try:
        code = main(list(argv))
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr()
    return code, out.out, out.err


def test_schedule_json_and_closed_dates(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUSINESS_CALENDAR_CLOSED_DATES", raising=False)
    code, out, _ = run(capsys, "calendar", "schedule", "--submitted-on", "2025-11-21")
    assert code == 0
    assert json.loads(out) == {"submittedOn": "2025-11-21", "acceptedOn": "2025-11-25", "batchDate": "2025-12-01",
                               "effective": {"TAXIS": "2025-12-09", "JOHS": "2025-12-09", "JUJU": "2025-12-12",
                                             "LOACUS": "2025-12-12"}}
    monkeypatch.setenv("BUSINESS_CALENDAR_CLOSED_DATES", "2025-12-01,2025-12-12")
    code, out, _ = run(capsys, "calendar", "schedule", "--submitted-on", "2025-11-21")
    assert json.loads(out)["batchDate"] == "2025-12-02"
    assert json.loads(out)["effective"]["JUJU"] == "2025-12-16"  # 12-12 closed as well


def test_bad_input_is_one_line_and_a_non_zero_exit(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUSINESS_CALENDAR_CLOSED_DATES", "2025-02-30")
    code, _, err = run(capsys, "calendar", "schedule", "--submitted-on", "2025-11-21")
    assert code == 1 and err.startswith("kagi: BUSINESS_CALENDAR_CLOSED_DATES")
    monkeypatch.delenv("BUSINESS_CALENDAR_CLOSED_DATES")
    with pytest.raises(SystemExit) as bad_date:
        run(capsys, "calendar", "schedule", "--submitted-on", "2019-02-30")
    assert bad_date.value.code == 2
    assert "2019-02-30" in capsys.readouterr().err
