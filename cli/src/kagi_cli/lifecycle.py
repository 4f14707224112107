"""``kagi lifecycle``: the inactivity ladder for support and operators.

``ladder`` computes a period's dates (no database); ``preview`` lists who a sweep would hit;
``sweep`` runs one sweep for a chosen moment (catching up, tests). Moments without an offset
are Japan time; a bare date means that day's 07:00 sweep.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from kagi_cli.commands import command_group
from kagi_shared.settings import Settings


def quiet_logs() -> None:
    """stdout carries only the JSON answer: logs go to stderr, warnings and worse."""
    from kagi_shared.logging import configure_logging

    configure_logging("kagi-cli", "WARNING")


def _days(settings: Settings) -> Any:
    from kagi_lifecycle.bootstrap import ladder_days

    return ladder_days(settings)


def cmd_ladder(args: argparse.Namespace, settings: Settings) -> int:
    from kagi_lifecycle.domain.ladder import ladder_for

    try:
        base = date.fromisoformat(args.last_login)
    except ValueError:
        raise SystemExit(f"kagi: --last-login {args.last_login!r} is not a date (YYYY-MM-DD)") from None
    print(json.dumps(ladder_for(base, _days(settings)).as_json(), ensure_ascii=False, indent=2))
    return 0


def _as_of(text: str | None) -> Any:
    from kagi_lifecycle.service.sweep import parse_as_of

    if text is None:
        return None
    try:
        return parse_as_of(text)
    except ValueError as exc:
        raise SystemExit(f"kagi: --as-of: {exc}") from None


async def _preview(settings: Settings, as_of: Any) -> dict[str, Any]:
    from kagi_lifecycle.bootstrap import bootstrap

    quiet_logs()
    lifecycle = bootstrap(settings)
    try:
        await lifecycle.start()
        moment, rows = await lifecycle.sweeps.preview(as_of)
    finally:
        await lifecycle.close()
    return {"asOf": moment.isoformat(), **{stage: [r.as_json() for r in found] for stage, found in rows.items()}}


async def _sweep(settings: Settings, as_of: Any) -> dict[str, Any]:
    from kagi_lifecycle.bootstrap import bootstrap

    quiet_logs()
    lifecycle = bootstrap(settings)
    try:
        await lifecycle.start()
        result = await lifecycle.sweeps.sweep(as_of, correlation_id="kagi-cli-sweep")
    finally:
        await lifecycle.close()
    return result.as_json()


def cmd_preview(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    print(json.dumps(asyncio.run(_preview(settings, _as_of(args.as_of))), ensure_ascii=False, indent=2))
    return 0


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    print(json.dumps(asyncio.run(_sweep(settings, _as_of(args.as_of))), ensure_ascii=False, indent=2))
    return 0


def register(subparsers: Any) -> None:
    sub = command_group(subparsers, "lifecycle", "inactivity ladder: dates, preview, sweep",
                        "The inactivity ladder (SPEC §4)")

    ladder = sub.add_parser("ladder", help="the ladder's dates for a last login (JSON)",
                            description="warning1, warning2, lock, purge, loginDeadline, unlockDeadline")
    ladder.add_argument("--last-login", required=True, metavar="YYYY-MM-DD",
                        help="Japan date of the last login (or of the ID's issue)")
    ladder.set_defaults(func=cmd_ladder)

    preview = sub.add_parser("preview", help="who the next sweep would hit, per stage (JSON)",
                             description="Accounts a sweep would warn, lock or purge; changes nothing")
    preview.add_argument("--as-of", metavar="DATETIME",
                         help="moment of the sweep (default: the next scheduled one); Japan time without offset")
    preview.set_defaults(func=cmd_preview)

    sweep = sub.add_parser("sweep", help="run one sweep for a chosen moment",
                           description="Apply every stage due at --as-of (mails go through notify)")
    sweep.add_argument("--as-of", required=True, metavar="DATETIME",
                       help="e.g. 2026-05-01T07:00 (Japan time) or 2026-05-01T07:00+09:00")
    sweep.set_defaults(func=cmd_sweep)
