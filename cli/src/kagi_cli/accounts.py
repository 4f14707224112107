"""``kagi accounts``: break-glass account actions from the operator's shell (issue 15 finding 4).

``unlock`` ends a lock directly in lifecycle's database: the way back in when every operator is locked out
(an operator's own failed-login lock also ends by itself after ``KAGI_SECURITY_PRIVILEGED_LOCK_S``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
from typing import Any

from kagi_shared.settings import Settings


class AccountError(Exception):
    """A refusal to report as one line."""


async def _unlock(settings: Settings, login_id: str, by: str) -> tuple[str, str | None]:
    from kagi_cli.lifecycle import quiet_logs
    from kagi_lifecycle.bootstrap import bootstrap
    from kagi_shared.problems import Problem

    quiet_logs()
    lifecycle = bootstrap(settings)
    try:
        await lifecycle.store.ping()  # an unreachable database is one line, before anything else is tried
        await lifecycle.start()
        try:
            account = await lifecycle.unlocks.break_glass(login_id, by, correlation_id="kagi-cli-unlock")
        except Problem as exc:
            raise AccountError(f"{login_id}: {exc.code} ({exc.title})") from None
        return account.login_id, account.lock_reason
    finally:
        await lifecycle.close()


def cmd_unlock(args: argparse.Namespace, settings: Settings) -> int:
    by = f"cli:{getpass.getuser()}"
    try:
        login_id, reason = asyncio.run(_unlock(settings, args.login_id, by))
    except AccountError as exc:
        raise SystemExit(f"kagi: {exc}") from None  # one line on stderr, exit 1
    print(f"unlocked {login_id} (lock reason was {reason or 'unknown'}; recorded as {by})")
    return 0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("accounts", help="break-glass account actions (lifecycle database)",
                                  description="Account actions run directly against lifecycle's database")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    unlock = sub.add_parser("unlock", help="unlock a locked account (any reason); mailed to its owner",
                            description="Unlock an account from the shell: for when no operator can log in")
    unlock.add_argument("login_id", metavar="LOGIN_ID", help="the account's login ID")
    unlock.set_defaults(func=cmd_unlock)
