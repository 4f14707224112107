"""When a request is accepted, batched and usable (SPEC §3 Timing; seed 5-1 to 5-3).

The acceptance date picks the half-month window: accepted on the 1st–15th → batch date M is
the 16th; on the 16th–last day → the 1st of the next month; moved to the next business day if
needed. New grants: TAXIS/JOHS usable from M + 6 business days, JUJU/LOACUS from M + 9.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from kagi_permissions.domain.calendar import BusinessCalendar

FAST_SYSTEMS = ("TAXIS", "JOHS")
SLOW_SYSTEMS = ("JUJU", "LOACUS")
FAST_LAG = 6
SLOW_LAG = 9


@dataclass(frozen=True)
class Schedule:
    submitted_on: date
    accepted_on: date
    batch_date: date
    effective: dict[str, date]


def earliest_acceptance(calendar: BusinessCalendar, submitted_on: date) -> date:
    """The business day after submission (the operator's earliest acceptance date)."""
    return calendar.next_business_day(submitted_on)


def acceptance_date(calendar: BusinessCalendar, submitted_on: date, today: date) -> date:
    """The date an acceptance made ``today`` counts for: never before the earliest acceptance date."""
    return max(earliest_acceptance(calendar, submitted_on), calendar.on_or_after(today))


def batch_date(calendar: BusinessCalendar, accepted_on: date) -> date:
    """System processing date M (システム処理日) for an acceptance date."""
    if accepted_on.day <= 15:
        nominal = accepted_on.replace(day=16)
    else:
        first_of_next = (accepted_on.replace(day=28) + timedelta(days=4)).replace(day=1)
        nominal = first_of_next
    return calendar.on_or_after(nominal)


def change_batch_date(calendar: BusinessCalendar, submitted_on: date) -> date:
    """Seed 5-2 ③: JUJU/LOACUS changes entered (①変更申請入力) on the 1st–15th go in the batch of the 16th, those
    of the 16th–last day in that of the 1st of the next month (moved to the next business day). The submission
    date counts as it is, a closure day included: there is no operator acceptance to wait for."""
    return batch_date(calendar, submitted_on)


def effective_from_batch(calendar: BusinessCalendar, batch: date, system: str) -> date:
    lag = FAST_LAG if system in FAST_SYSTEMS or system == "INFOSITE" else SLOW_LAG
    return calendar.add_business_days(batch, lag)


def schedule(calendar: BusinessCalendar, submitted_on: date) -> Schedule:
    """The projected dates of a new request submitted on ``submitted_on``."""
    accepted = earliest_acceptance(calendar, submitted_on)
    batch = batch_date(calendar, accepted)
    effective = {system: effective_from_batch(calendar, batch, system) for system in (*FAST_SYSTEMS, *SLOW_SYSTEMS)}
    return Schedule(submitted_on, accepted, batch, effective)


def revoke_effective(submitted_on: date, system: str) -> date | None:
    """TAXIS/JOHS lose access the next calendar day; JUJU/LOACUS when completion is recorded (None)."""
    if system in SLOW_SYSTEMS:
        return None
    return submitted_on + timedelta(days=1)
