"""``kagi calendar``: the business calendar and the schedule preview of permission requests (SPEC §3).

``kagi calendar schedule --submitted-on 2026-05-01`` prints the same JSON as
``GET /api/v1/permission-requests/schedule?submittedOn=2026-05-01``, honouring
``BUSINESS_CALENDAR_CLOSED_DATES``; ``kagi calendar days`` lists business days for a check by eye.
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from typing import Any

from kagi_cli.commands import command_group
from kagi_shared.settings import Settings


def iso_date(value: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def cmd_schedule(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec

    from kagi_permissions.domain.calendar import calendar_from
    from kagi_permissions.domain.timing import schedule
    from kagi_permissions.entrypoints.replies import schedule_out

    preview = schedule_out(schedule(calendar_from(settings), args.submitted_on))
    print(msgspec.json.encode(preview).decode())
    return 0


def cmd_days(args: argparse.Namespace, settings: Settings) -> int:
    from kagi_permissions.domain.calendar import calendar_from

    calendar = calendar_from(settings)
    for offset in range(args.days):
        day = args.start + timedelta(days=offset)
        if calendar.is_business_day(day):
            state = "business day"
        else:
            state = "closed: " + (calendar.holiday_name(day) or ("weekend" if day.weekday() >= 5 else "closure"))
        print(f"{day.isoformat()} {day:%a}  {state}")
    return 0


def register(subparsers: Any) -> None:
    actions = command_group(subparsers, "calendar", "business calendar and request schedule",
                            "Business calendar (営業日) and the permission-request schedule")
    preview = actions.add_parser("schedule", help="acceptance, batch and usable-from dates for a submission date",
                                 description="Print the projected dates of a request as JSON")
    preview.add_argument("--submitted-on", type=iso_date, required=True, metavar="YYYY-MM-DD")
    preview.set_defaults(func=cmd_schedule)
    days = actions.add_parser("days", help="list business and closed days",
                           description="List business and closed days from --start")
    days.add_argument("--start", type=iso_date, default=date.today(), metavar="YYYY-MM-DD")
    days.add_argument("--days", type=int, default=14)
    days.set_defaults(func=cmd_days)
