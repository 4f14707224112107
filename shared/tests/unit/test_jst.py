from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kagi_shared.jst import jp_deadline, jp_slash_date


def test_deadline_is_shown_in_japan_time_in_the_seed_format() -> None:
    assert jp_deadline(datetime(2023, 9, 15, 5, 59, tzinfo=UTC)) == "2023年09月15日 14時59分まで"


def test_slash_date_crosses_midnight_in_japan_time() -> None:
    assert jp_slash_date(datetime(2019, 9, 26, 15, 30, tzinfo=UTC)) == "2019/09/27"
    assert jp_slash_date(date(2019, 9, 27)) == "2019/09/27"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        jp_deadline(datetime(2023, 9, 15, 5, 59))
