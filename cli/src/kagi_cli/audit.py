"""``kagi audit``: verify the hash-chained audit ledger and list recent entries."""

from __future__ import annotations

import argparse
import json

from kagi_cli.commands import command_group
from kagi_shared.settings import Settings


async def _verify(settings: Settings) -> tuple[bool, str]:
    from kagi_audit.bootstrap import bootstrap

    audit = bootstrap(settings)
    try:
        verdict = await audit.service.verify()
    finally:
        await audit.close()
    if verdict.ok:
        return True, f"audit chain intact: {verdict.entries} entries"
    return False, f"audit chain BROKEN at entry {verdict.broken_at}: {verdict.reason}"


async def _list(settings: Settings, actor: str | None, limit: int) -> list[dict[str, object]]:
    from kagi_audit.bootstrap import bootstrap

    audit = bootstrap(settings)
    try:
        return [{"seq": link.seq, **link.entry} for link in await audit.ledger.recent(actor, limit)]
    finally:
        await audit.close()


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    if args.action == "verify":
        ok, message = asyncio.run(_verify(settings))
        print(message)
        return 0 if ok else 2
    for entry in asyncio.run(_list(settings, args.actor, args.limit)):
        print(json.dumps(entry, ensure_ascii=False, default=str))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = command_group(sub, "audit", "the audit ledger", "Verify or list the audit ledger")
    actions.add_parser("verify", help="check the hash chain; names the first edited or missing entry",
                       description="Check the ledger's hash chain; exit 2 if it is broken").set_defaults(func=cmd_audit)
    listing = actions.add_parser("list", help="recent entries as JSON lines, newest first",
                                 description="Recent ledger entries as JSON lines, newest first")
    listing.add_argument("--actor", help="only this actor id")
    listing.add_argument("--limit", type=int, default=50, help="how many (newest first)")
    listing.set_defaults(func=cmd_audit)
