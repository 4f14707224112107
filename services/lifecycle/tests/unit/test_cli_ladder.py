"""``kagi lifecycle ladder`` prints the period's dates as JSON; bad input is one line on stderr."""

from __future__ import annotations

import json

import pytest

from kagi_cli.main import main


def test_ladder_prints_the_seeds_dates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lifecycle", "ladder", "--last-login", "2019-04-01"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "warning1": "2019-07-30", "warning2": "2019-08-29", "lock": "2019-09-28", "purge": "2019-10-28",
        "loginDeadline": "2019-09-27", "unlockDeadline": "2019-10-27",
    }


def test_ladder_refuses_a_malformed_date(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["lifecycle", "ladder", "--last-login", "2019/04/01"])
    assert "is not a date (YYYY-MM-DD)" in str(exited.value.code)


def test_sweep_needs_a_moment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["lifecycle", "sweep"])
    assert exited.value.code == 2
    assert "--as-of" in capsys.readouterr().err
