"""``kagi accounts``: operator (託送受付センター) and support accounts — the way a real installation starts.

``create`` stores the account waiting for 認証情報登録 and mails its holder the two enrolment mails (a
one-time URL, then a one-time password); the holder chooses the password. No password is ever taken on
the command line or printed. The mails leave through lifecycle's outbox, so the lifecycle worker must run.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

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


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("accounts", help="operator and support accounts (enrolled by mail)",
                                  description="Accounts of the operator (託送受付センター) and of support staff")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    create_parser = sub.add_parser(
        "create", help="create an operator or support account and mail its enrolment",
        description="The account waits for 認証情報登録: its holder gets a one-time URL and a one-time password "
                    "by mail and chooses the password (none is taken here or printed)")
    create_parser.add_argument("--role", required=True, choices=("operator", "support"))
    create_parser.add_argument("--email", required=True, help="the login ID and the address the mails go to")
    create_parser.add_argument("--name", required=True, help="the holder's name")
    create_parser.set_defaults(func=cmd_create)
