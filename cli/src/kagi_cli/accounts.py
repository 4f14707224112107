"""``kagi accounts``: operator (託送受付センター) and support accounts — the way a real installation starts.

``create`` stores the account waiting for 認証情報登録 and mails its holder the two enrolment mails (a
one-time URL, then a one-time password); the holder chooses the password. No password is ever taken on
the command line or printed. The mails leave through lifecycle's outbox, so the lifecycle worker must run.

``unlock`` (break glass, issue 15 finding 4) ends a lock directly in lifecycle's database: the way back in when
every operator is locked out (an operator's own failed-login lock also ends by itself after
``KAGI_SECURITY_PRIVILEGED_LOCK_S``). It is mailed to the account and reaches the audit ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
from typing import Any

from kagi_cli.commands import command_group
from kagi_shared.settings import Settings


async def create(settings: Settings, email: str, name: str, role: str) -> tuple[str, str, str]:
    from kagi_cli.lifecycle import quiet_logs
    from kagi_lifecycle.bootstrap import bootstrap

    quiet_logs()
    lifecycle = bootstrap(settings)
    try:
        await lifecycle.start()
        account = await lifecycle.enrolments.create_staff(email, name, role, correlation_id="kagi-cli-accounts")
    finally:
        await lifecycle.close()
    return account.id, account.login_id, account.status


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from kagi_shared.problems import Problem

    try:
        account_id, login_id, status = asyncio.run(create(settings, args.email, args.name, args.role))
    except Problem as exc:
        reasons = "; ".join(f"{e.field}: {e.reason}" for e in exc.errors)
        raise SystemExit(f"kagi: {exc.code}: {exc.title}" + (f" ({reasons})" if reasons else "")) from None
    print(f"created {args.role} {login_id} (account {account_id}, {status}); "
          f"the enrolment URL and one-time password were mailed to {args.email.strip()}")
    return 0


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
    sub = command_group(subparsers, "accounts", "operator and support accounts (enrolled by mail); break glass",
                        "Accounts of the operator (託送受付センター) and of support staff")
    create_parser = sub.add_parser(
        "create", help="create an operator or support account and mail its enrolment",
        description="The account waits for 認証情報登録: its holder gets a one-time URL and a one-time password "
                    "by mail and chooses the password (none is taken here or printed)")
    create_parser.add_argument("--role", required=True, choices=("operator", "support"))
    create_parser.add_argument("--email", required=True, help="the login ID and the address the mails go to")
    create_parser.add_argument("--name", required=True, help="the holder's name")
    create_parser.set_defaults(func=cmd_create)
    unlock = sub.add_parser("unlock", help="break glass: unlock a locked account (any reason); mailed to its owner",
                            description="Unlock an account from the shell: for when no operator can log in")
    unlock.add_argument("login_id", metavar="LOGIN_ID", help="the account's login ID")
    unlock.set_defaults(func=cmd_unlock)
