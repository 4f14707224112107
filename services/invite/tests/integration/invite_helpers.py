"""What invite's integration tests share: a started service, an open step-up window, the mailed link's token."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from kagi_invite.bootstrap import Invite, bootstrap
from kagi_shared.mongo import OUTBOX, Store, Tx
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from tests.support import opened_request


class NoDeadLetters:
    async def __call__(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        raise AssertionError(f"unexpected dead letter on {topic}: {dict(headers)}")


def with_invite(settings: Settings, **changes: Any) -> Settings:
    return msgspec.structs.replace(settings, invite=msgspec.structs.replace(settings.invite, **changes))


async def started(settings: Settings, store_factory: Any, **changes: Any) -> Invite:
    """Invite on a fresh database, with ``changes`` to its settings."""
    invite = bootstrap(with_invite(settings, **changes), await store_factory("invite"))
    await invite.start()
    return invite


async def open_step_up(invite: Invite, caller: Caller, minutes: int = 15) -> None:
    """A step-up window for the caller's session, as a verified code opens it."""
    async def work(tx: Tx) -> None:
        await invite.step_ups.open_window(tx, caller.account_id, caller.session_id or "",
                                          datetime.now(UTC) + timedelta(minutes=minutes))

    await invite.store.transaction(work)


async def outbox(store: Store, topic: str) -> list[dict[str, Any]]:
    rows = await store.db[OUTBOX].find({"topic": topic}).sort("seq", 1).to_list()
    return [msgspec.json.decode(bytes(r["value"])) for r in rows]


async def link_token(invite: Invite, email: str) -> str:
    """Ask for a confirmation link to ``email`` and read its token from the mail."""
    await invite.invitations.request_link(email, "10.0.0.1")
    mails = [e for e in await outbox(invite.store, "notify.requests") if e["data"]["recipient"] == email]
    match = re.search(r"token=([0-9a-f]+)", opened_request(mails[-1]["data"])["variables"]["url"])
    assert match
    return match.group(1)


async def refusal(awaitable: Any) -> Problem:
    """The problem ``awaitable`` raises (the test fails if it raises none)."""
    with pytest.raises(Problem) as refused:
        await awaitable
    return refused.value
