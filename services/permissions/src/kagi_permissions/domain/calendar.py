"""The business calendar (当社営業日, SPEC §3): no weekends, national holidays or company closure days.

National holidays come from the ``holidays`` package (substitute holidays 振替休日 and citizens'
holidays 国民の休日 included); the company is closed Dec 31 – Jan 3 every year, plus any date the
operator configures in ``BUSINESS_CALENDAR_CLOSED_DATES``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import holidays

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


def _japan() -> Any:
    """Japan's national holidays, without loading every other country's.

    ``holidays.country_holidays("JP")`` imports the package ``holidays.countries``, whose ``__init__`` imports all
    ~250 countries: 0.3 s of CPU in every process that builds a calendar (``kagi calendar schedule`` among them).
    The Japanese module is loaded here under its own name, so a later import of the package reuses it; should the
    package's layout change, the ordinary way is taken.
    """
    name = "holidays.countries.japan"
    module = sys.modules.get(name)
    if module is None:
        path = Path(holidays.__file__).parent / "countries" / "japan.py"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None or not path.exists():
            return holidays.country_holidays("JP")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules[name]
            return holidays.country_holidays("JP")
    return module.Japan()


class BusinessCalendar:
    def __init__(self, closed_dates: Iterable[date] = ()) -> None:
        self.closed_dates = frozenset(closed_dates)
        self._national = _japan()

    def holiday_name(self, day: date) -> str | None:
        name = self._national.get(day)
        return str(name) if name else None

    def is_business_day(self, day: date) -> bool:
        if day.weekday() >= 5:
            return False
        if (day.month, day.day) in YEAR_END_CLOSURE or day in self.closed_dates:
            return False
        return day not in self._national

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
