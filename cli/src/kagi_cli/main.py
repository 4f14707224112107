"""``kagi``: one command for operators, support and SREs.

Errors are one clear line on stderr and a non-zero exit; ``--help`` works everywhere.

Each command imports what it needs when it runs: the service stacks (Litestar, PyMongo, faust, aiokafka)
took three seconds to load, and ``kagi --help`` or ``kagi calendar schedule`` needs none of them. The command
modules below keep their top-level imports just as light (``tests`` check which modules ``--help`` loads).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from kagi_cli import accounts, audit, catalogue, clients, invite, lifecycle, notify, permissions
from kagi_cli.commands import command_group
from kagi_local.processes import ProcessError, ProcessSpec
from kagi_shared.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:
    from kagi_local.infra import Infra

DEMO_ADMIN = "admin@partner.example.jp"
DEMO_SYSTEM_USER = "hanako.takuso@partner.example.jp"
DEMO_ACCOUNTS = (
    ("owner@kagi.example.jp", "Portal#2026-demo", ["owner"], "account owner (MyPage)"),
    (DEMO_ADMIN, "Partner#2026-demo", ["company_admin"], "company admin (システム窓口責任者)"),
    ("operator@kagi.example.jp", "Center#2026-demo", ["operator"], "operator (託送受付センター)"),
    (DEMO_SYSTEM_USER, "Taxis#2026-demo", ["system_user"], "system user (TAXIS 1011, enrolled)"),
)


class CliError(Exception):
    """A failure to report as one line."""


# Service-specific command groups: each module has `register(subparsers)` adding one group whose
# handlers take (args, settings) and return an exit code. A new group is one import and one entry here.
COMMAND_MODULES: list[ModuleType] = [catalogue, notify, audit, lifecycle, accounts, clients, permissions, invite]


# -- infra -------------------------------------------------------------------------------------
def _infra(settings: Settings) -> Infra:
    from kagi_local.infra import Infra

    return Infra(settings)


def cmd_infra(args: argparse.Namespace, settings: Settings) -> int:
    infra = _infra(settings)
    if args.action == "up":
        for status in infra.up():
            print(status.line())
    elif args.action == "down":
        stopped = infra.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    else:
        for status in infra.status():
            print(status.line())
    return 0


# -- demo --------------------------------------------------------------------------------------
DemoRow = tuple[str, str, str, str, str | None]
"""(label, login ID, password, state, TOTP secret of a privileged demo account)."""


async def seed_demo(settings: Settings) -> list[DemoRow]:
    from kagi_lifecycle.bootstrap import bootstrap
    from kagi_shared.problems import Problem

    if settings.env == "prod":  # the demo passwords are published in the README: an operator account anyone knows
        raise CliError("demo seed creates accounts whose passwords are public; refused in production (KAGI_ENV=prod)")

    lifecycle = bootstrap(settings)
    await lifecycle.start()
    rows: list[DemoRow] = []
    try:
        for login_id, password, roles, label in DEMO_ACCOUNTS:
            try:
                await lifecycle.service.create_account(login_id, password, roles)
                state = "created"
            except Problem as exc:
                if exc.code != "account.exists":
                    raise
                state = "exists"
            rows.append((label, login_id, password, state, await demo_totp_secret(lifecycle, login_id)))
    finally:
        await lifecycle.close()
    from kagi_permissions.bootstrap import bootstrap as permissions_bootstrap
    from kagi_permissions.devtools.demo import DEMO_COMPANY, seed_company

    permissions = permissions_bootstrap(settings)
    try:
        await permissions.start()
        _, state = await seed_company(permissions, DEMO_ADMIN, DEMO_SYSTEM_USER)
    finally:
        await permissions.close()
    rows.append((f"company {DEMO_COMPANY}", DEMO_ADMIN, "(primary admin)", state, None))
    contracts = await invite.seed_contracts(settings)
    rows.append(("sample contracts (contracts.upserted)", invite.DEMO_OWNER, f"{contracts} contracts", "published",
                 None))
    return rows


async def demo_totp_secret(lifecycle: Any, login_id: str) -> str | None:
    """Operators and company admins log in with TOTP (KAGI_SECURITY_TOTP_ROLES), the demo ones too: the seed
    enrols them as a person would (a seed, confirmed with its first code) and shows the seed, so it can go into
    an authenticator app; ``kagi demo totp LOGIN_ID`` prints the current code instead."""
    import pyotp

    account = await lifecycle.accounts.by_login_id(login_id)
    if account is None or not lifecycle.service.needs_totp(account):
        return None
    if account.totp_secret is not None:
        return str(lifecycle.service.totp_box.open(account.totp_secret, account.id))
    enrolment = await lifecycle.totp.setup(account.id)
    await lifecycle.totp.confirm(account.id, pyotp.TOTP(enrolment.secret).now())
    return str(enrolment.secret)


def print_demo(rows: list[DemoRow], prefix: str = "") -> None:
    for label, login_id, password, state, secret in rows:
        print(f"{prefix}{label:<38} {login_id:<28} {'password ' if prefix else ''}{password}  ({state})")
        if secret:
            print(f"{' ' * len(prefix)}  TOTP secret {secret} for {login_id}  (code: kagi demo totp {login_id})")


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    print_demo(asyncio.run(seed_demo(settings)))
    return 0


async def _demo_code(settings: Settings, login_id: str) -> str:
    import asyncio
    import time

    import pyotp

    from kagi_lifecycle.bootstrap import bootstrap

    if settings.env == "prod":
        raise CliError("demo TOTP codes are not available in prod")
    if login_id not in {row[0] for row in DEMO_ACCOUNTS}:
        raise CliError(f"{login_id} is not a demo account")
    lifecycle = bootstrap(settings)
    try:
        account = await lifecycle.accounts.by_login_id(login_id)
        if account is None or account.totp_secret is None:
            raise CliError(f"{login_id} has no TOTP enrolled (run 'kagi demo seed')")
        totp = pyotp.TOTP(lifecycle.service.totp_box.open(account.totp_secret, account.id))
        while True:  # a step later than the last used (a code works once), within the server's one-step drift
            now = int(time.time()) // 30
            step = max(account.totp_last_step + 1, now - 1)
            if step <= now + 1:
                return str(totp.at(step * 30))
            await asyncio.sleep(1)
    finally:
        await lifecycle.close()


def cmd_demo_totp(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    print(asyncio.run(_demo_code(settings, args.login_id)))
    return 0


# -- mail --------------------------------------------------------------------------------------
def cmd_mail(args: argparse.Namespace, settings: Settings) -> int:
    from kagi_cli.mailbox import mailbox, read_mail

    directory = settings.var_path / "mail"
    mails = mailbox(directory)
    if args.action == "list":
        # Numbered by place in the whole mailbox, so `mail show N` opens this line's mail after any filter.
        numbered = list(enumerate(mails, start=1))
        if args.to:
            numbered = [(n, m) for n, m in numbered if args.to.lower() in m.to.lower()]
        for index, mail in numbered[-args.last:] if args.last > 0 else numbered:
            print(f"{index:>4}  {mail.path.name}  {mail.to:<30}  {mail.subject}")
        if not numbered:
            print(f"no mail to {args.to!r} in {directory}" if args.to and mails else f"no mail in {directory}")
        return 0
    if args.mail.isdigit():
        if not 1 <= int(args.mail) <= len(mails):
            raise CliError(f"no mail {args.mail!r} in {directory} (use 'kagi mail list')")
        target = mails[int(args.mail) - 1].path
    else:
        target = Path(args.mail)
        if not target.exists():
            target = directory / args.mail
        if not target.exists():
            raise CliError(f"no mail {args.mail!r} in {directory} (use 'kagi mail list')")
    mail = read_mail(target)
    print(f"From: {mail.message['From']}\nTo: {mail.to}\nDate: {mail.date}\nSubject: {mail.subject}\n")
    print(mail.body)
    return 0


# -- whole system ------------------------------------------------------------------------------
def _http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        import urllib.request

        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback URL from settings
            return bool(response.status == 200)

    return check


def system_specs(settings: Settings) -> list[ProcessSpec]:
    from kagi_local.infra import service_specs

    specs = []
    for spec in service_specs(settings):
        if spec.port is not None:
            spec = ProcessSpec(spec.name, spec.argv, spec.port, spec.env,
                               _http_ready(f"http://127.0.0.1:{spec.port}/ready"), spec.ready_timeout_s)
        specs.append(spec)
    return specs


def target_login_port(settings: Settings) -> int:
    """The TAXIS login simulator's port: ``KAGI_SIMULATOR_LOGIN_PORT``, else the gateway's + 110 (8110), so parallel
    checkouts do not collide."""
    return int(os.environ.get("KAGI_SIMULATOR_LOGIN_PORT") or settings.ports.gateway + 110)


def demo_specs(settings: Settings) -> list[ProcessSpec]:
    """Only for `kagi up`/`make run`: a stand-in for the target systems that acknowledges grants."""
    return [ProcessSpec("target-simulator", [sys.executable, "-m", "kagi_permissions.devtools.target_simulator"]),
            # TAXIS's login screen: a system user logs in through Kagi (OpenID Connect) and sees the permission.
            ProcessSpec("target-login", [sys.executable, "-m", "kagi_cli.target_login"],
                        port=target_login_port(settings))]


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from kagi_local.infra import infra_specs

    infra = _infra(settings)
    already_up = {status.name for status in infra.status() if status.state == "running"}
    print("starting the embedded infrastructure …", flush=True)
    infra.up()
    print("starting services and gateway …", flush=True)
    try:
        infra.up(system_specs(settings) + demo_specs(settings))
    except BaseException:
        # Servers without the services are of no use, and would hold their ports against the next `kagi up`.
        infra.down([spec for spec in infra_specs(settings) if spec.name not in already_up])
        raise
    print_demo(asyncio.run(seed_demo(settings)), prefix="  demo ")
    gw = f"http://127.0.0.1:{settings.ports.gateway}"
    taxis = f"http://127.0.0.1:{target_login_port(settings)}"
    print(f"\nKagi is running.\n  gateway  {gw}\n  OpenAPI  {gw}/schema\n  health   {gw}/ready\n"
          f"  TAXIS    {taxis}   (simulator: a system user logs in through Kagi, OpenID Connect)\n"
          f"  mail     kagi mail list   (files under {settings.var_path / 'mail'})\n"
          f"  logs     {settings.var_path / 'log'}/")
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    infra = _infra(settings)
    stopped = infra.down(demo_specs(settings)) + infra.down(system_specs(settings)) + infra.down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    infra = _infra(settings)
    for status in infra.status() + infra.status(system_specs(settings) + demo_specs(settings)):
        print(status.line())
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Start everything, print where it is, and stop it all on Ctrl-C."""
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cmd_up(args, settings)
        print("\nPress Ctrl-C to stop.", flush=True)
        while not stop:
            time.sleep(0.5)
    finally:
        print("\nstopping …", flush=True)
        cmd_down(args, settings)
    return 0


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kagi", description="Kagi operations tool")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    infra_sub = command_group(sub, "infra", "embedded broker, database and SMTP sink",
                              "Start, stop or show the embedded infrastructure")
    for action, text in (("up", "start the broker, database and SMTP sink; wait until ready"),
                         ("down", "stop the embedded servers this checkout started"),
                         ("status", "state, pid and port of each embedded server")):
        infra_sub.add_parser(action, help=text, description=text[0].upper() + text[1:]).set_defaults(func=cmd_infra)

    demo_sub = command_group(sub, "demo", "demo data", "Demo data for a local system")
    demo_sub.add_parser("seed", help="create the demo accounts and sample contracts (idempotent)",
                        description="Create the demo accounts (owner, company admin, operator) and publish sample "
                                    "contracts; running it again changes nothing").set_defaults(func=cmd_demo)
    totp = demo_sub.add_parser("totp", help="the current TOTP code of a demo operator or company admin",
                               description="Print a TOTP code the next login of a demo account accepts (not in prod)")
    totp.add_argument("login_id", metavar="LOGIN_ID")
    totp.set_defaults(func=cmd_demo_totp)

    mail_sub = command_group(sub, "mail", "mails captured by the SMTP sink", "Mails in var/mail/")
    mail_list = mail_sub.add_parser("list", help="list captured mails",
                                    description="List captured mails, numbered by place in the mailbox")
    mail_list.add_argument("--to", help="only mails to this address (substring)")
    mail_list.add_argument("--last", type=int, default=0, help="only the last N")
    mail_list.set_defaults(func=cmd_mail)
    mail_show = mail_sub.add_parser("show", help="show one mail decoded",
                                    description="Show one captured mail with its headers and decoded body")
    mail_show.add_argument("mail", help="number from 'kagi mail list', file name or path")
    mail_show.set_defaults(func=cmd_mail)

    sub.add_parser("up", help="start infrastructure, services and gateway in the background",
                   description="Start everything and return").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop everything this checkout started",
                   description="Stop every process started from this checkout").set_defaults(func=cmd_down)
    sub.add_parser("status", help="state of every process", description="State of every process") \
        .set_defaults(func=cmd_status)
    sub.add_parser("run", help="start everything in the foreground; Ctrl-C stops it",
                   description="Start everything, stop it all on Ctrl-C").set_defaults(func=cmd_run)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _mongo_hosts(uri: str) -> str:
    # Only host:port: the URI of a real server may carry a user and password.
    return uri.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[2]


def _raised_by(exc: BaseException, module: str, *names: str) -> bool:
    """``exc`` is one of ``module``'s exception classes ``names``. Looked up only if a command loaded that module:
    a command that never imported the database driver cannot have raised its errors, and ``kagi --help`` must
    not pay for importing it."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, tuple(getattr(loaded, name) for name in names))


def unreachable(exc: BaseException, settings: Settings) -> str | None:
    """One line for a broker or database failure, or None if ``exc`` is something else."""
    if _raised_by(exc, "pymongo.errors", "ConnectionFailure"):
        # pymongo's message lists the whole topology description: far too long for one line.
        return (f"cannot reach the database at {_mongo_hosts(settings.mongo_uri)} ({type(exc).__name__}); "
                "is it up? ('kagi infra up')")
    if _raised_by(exc, "pymongo.errors", "PyMongoError"):
        detail = str(exc).splitlines()[0][:200] if str(exc) else "no detail"
        return f"database error ({type(exc).__name__}): {detail}"
    if _raised_by(exc, "aiokafka.errors", "KafkaConnectionError", "KafkaTimeoutError", "NoBrokersAvailable"):
        return f"cannot reach the broker at {settings.kafka_bootstrap} ({exc}); is it up? ('kagi infra up')"
    if _raised_by(exc, "aiokafka.errors", "KafkaError"):
        return f"broker error at {settings.kafka_bootstrap}: {exc}"
    if isinstance(exc, TimeoutError):
        return f"timed out ({str(exc) or 'no answer'}); is everything up? ('kagi status')"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings: Settings | None = None
    # aiokafka logs every refused connection before raising; with no logging configured those records reach
    # stderr beside our own line. The exception still arrives and is reported below.
    kafka_log = logging.getLogger("aiokafka")
    kafka_level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        settings = get_settings()
        return int(args.func(args, settings))
    except (CliError, ProcessError, SettingsError) as exc:
        print(f"kagi: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # TimeoutError (asyncio's too) is an OSError: a down server reaches here as any of the three.
        if not (isinstance(exc, OSError) or _raised_by(exc, "pymongo.errors", "PyMongoError")
                or _raised_by(exc, "aiokafka.errors", "KafkaError")):
            raise
        line = unreachable(exc, settings) if settings is not None else None
        print(f"kagi: {line or exc}", file=sys.stderr)
        return 1
    finally:
        kafka_log.setLevel(kafka_level)


if __name__ == "__main__":
    sys.exit(main())
