"""Japan time at the edges: everything inside is UTC, people read Asia/Tokyo in Japanese formats."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")


def to_jst(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: every time inside Kagi is UTC-aware")
    return moment.astimezone(JST)


def jp_deadline(moment: datetime) -> str:
    """``2023年09月15日 14時59分まで`` — the seed's expiry line."""
    return f"{to_jst(moment):%Y年%m月%d日 %H時%M分}まで"


def jp_datetime(moment: datetime) -> str:
    return f"{to_jst(moment):%Y年%m月%d日 %H時%M分}"


def jp_slash_date(day: date | datetime) -> str:
    """``2019/09/27`` — the consignment guide's date format."""
    if isinstance(day, datetime):
        day = to_jst(day).date()
    return f"{day:%Y/%m/%d}"
