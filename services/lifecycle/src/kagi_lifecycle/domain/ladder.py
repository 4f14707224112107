"""The inactivity ladder (SPEC §4): warning 1, warning 2, lock, purge. Pure: dates in, decisions out.

What a "day" is: days are counted in Japan calendar dates. The base date is the Japan date of
the last login (or of the ID's issue when nobody ever logged in); a stage's date is the base
date plus its number of days, and the stage is due from 00:00 Japan time on that date, so the
07:00 sweep of that date applies it and any later sweep catches up. The lock date is base + 180,
the purge date base + 210; mails show the day before each as the deadline (the seed: ログイン
deadline 2019/09/27 for a last login on 2019/04/01, unlock deadline 2019/10/27).

Each stage happens once per inactivity period (the period starts at the base date): the
account remembers the last stage applied. When sweeps were missed, only the highest due
stage is applied, and the skipped stages' mails are never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from kagi_shared.jst import JST, to_jst

Stage = Literal["warning1", "warning2", "lock", "purge"]
STAGES: tuple[Stage, ...] = ("warning1", "warning2", "lock", "purge")


@dataclass(frozen=True)
class LadderDays:
    """Days after the base date at which each stage is due (settings; SPEC: 120/150/180/210)."""

    warning1: int = 120
    warning2: int = 150
    lock: int = 180
    purge: int = 210

    def __post_init__(self) -> None:
        if not 0 < self.warning1 < self.warning2 < self.lock < self.purge:
            raise ValueError("ladder days must increase: warning1 < warning2 < lock < purge")

    def of(self, stage: Stage) -> int:
        days: int = getattr(self, stage)
        return days


@dataclass(frozen=True)
class Ladder:
    """The dates of one inactivity period, all Japan calendar dates."""

    base: date
    warning1: date
    warning2: date
    lock: date
    purge: date

    @property
    def login_deadline(self) -> date:
        """Shown in the warnings: log in by this date (lock date − 1)."""
        return self.lock - timedelta(days=1)

    @property
    def unlock_deadline(self) -> date:
        """Shown in the lock notice: request unlock by this date (purge date − 1)."""
        return self.purge - timedelta(days=1)

    def date_of(self, stage: Stage) -> date:
        day: date = getattr(self, stage)
        return day

    def as_json(self) -> dict[str, str]:
        return {
            "warning1": self.warning1.isoformat(),
            "warning2": self.warning2.isoformat(),
            "lock": self.lock.isoformat(),
            "purge": self.purge.isoformat(),
            "loginDeadline": self.login_deadline.isoformat(),
            "unlockDeadline": self.unlock_deadline.isoformat(),
        }


def japan_date(moment: datetime) -> date:
    return to_jst(moment).date()


def start_of_japan_day(day: date) -> datetime:
    """00:00 Japan time of ``day``, in UTC: the moment a stage dated ``day`` becomes due."""
    return datetime.combine(day, time(0), tzinfo=JST).astimezone(UTC)


def ladder_for(base: date, days: LadderDays = LadderDays()) -> Ladder:
    return Ladder(base=base, warning1=base + timedelta(days=days.warning1),
                  warning2=base + timedelta(days=days.warning2), lock=base + timedelta(days=days.lock),
                  purge=base + timedelta(days=days.purge))


def base_moment(last_login_at: datetime | None, issued_at: datetime) -> datetime:
    """Last login, or the issue time if the ID was never used."""
    return last_login_at if last_login_at is not None else issued_at


def _rank(stage: Stage | None) -> int:
    return -1 if stage is None else STAGES.index(stage)


def due_stage(ladder: Ladder, done: Stage | None, today: date) -> Stage | None:
    """The highest stage due on ``today`` that this period has not reached yet, or None."""
    due = None
    for stage in STAGES:
        if ladder.date_of(stage) <= today:
            due = stage
    if due is None or _rank(due) <= _rank(done):
        return None
    return due


@dataclass(frozen=True)
class NextStage:
    stage: Stage
    due_at: datetime
    """00:00 Japan time of the stage's date, in UTC: what the sweep's indexed query compares."""


def next_stage(ladder: Ladder, done: Stage | None) -> NextStage | None:
    """The stage after ``done`` in this period, with the moment it becomes due; None after purge."""
    rank = _rank(done)
    if rank + 1 >= len(STAGES):
        return None
    stage = STAGES[rank + 1]
    return NextStage(stage, start_of_japan_day(ladder.date_of(stage)))


def elapsed_days(ladder: Ladder, today: date) -> int:
    return (today - ladder.base).days
