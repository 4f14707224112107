"""The business calendar (当社営業日, SPEC §3): no weekends, national holidays or company closure days.

National holidays come from ``jpholiday`` (substitute holidays 振替休日 and citizens' holidays 国民の休日
included). It gives the same days as the ``holidays`` package's Japan for 2000–2050 and replaced it because importing
that package loads every lunar calendar it knows, most of ``kagi calendar schedule``'s start-up. The company is closed
Dec 31 – Jan 3 every year, plus any date the operator configures in ``BUSINESS_CALENDAR_CLOSED_DATES``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import TYPE_CHECKING

import jpholiday

if TYPE_CHECKING:
    from kagi_shared.settings import Settings

YEAR_END_CLOSURE = ((12, 31), (1, 1), (1, 2), (1, 3))


def parse_closed_dates(text: str) -> frozenset[date]:
    """``2026-12-28,2026-12-29`` → dates; raises ``ValueError`` naming the bad part."""
    out = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.add(date.fromisoformat(part))
        except ValueError:
            raise ValueError(f"{part!r} is not an ISO date (YYYY-MM-DD)") from None
    return frozenset(out)


class BusinessCalendar:
    def __init__(self, closed_dates: Iterable[date] = ()) -> None:
        self.closed_dates = frozenset(closed_dates)

    def holiday_name(self, day: date) -> str | None:
        return jpholiday.is_holiday_name(day)

    def is_business_day(self, day: date) -> bool:
        if day.weekday() >= 5:
            return False
        if (day.month, day.day) in YEAR_END_CLOSURE or day in self.closed_dates:
            return False
        return not jpholiday.is_holiday(day)

    def on_or_after(self, day: date) -> date:
        """``day`` if it is a business day, else the next one."""
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after ``day``."""
        return self.on_or_after(day + timedelta(days=1))

    def add_business_days(self, day: date, count: int) -> date:
        """The ``count``-th business day after ``day`` (``M + 6 営業日``)."""
        for _ in range(count):
            day = self.next_business_day(day)
        return day


def calendar_from(settings: Settings) -> BusinessCalendar:
    """The calendar with the operator's closure days (``BUSINESS_CALENDAR_CLOSED_DATES``)."""
    return BusinessCalendar(settings.permissions.closed_dates())
