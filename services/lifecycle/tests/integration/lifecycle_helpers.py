"""A lifecycle service on a fresh database with a clock the test moves, and a reader of its outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kagi_lifecycle.bootstrap import Lifecycle, bootstrap
from kagi_shared.events import decode
from kagi_shared.mongo import OUTBOX, Store
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings
from tests.support import Clock, opened_notice


async def make_lifecycle(settings: Settings, store: Store,
                         at: datetime = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)) -> tuple[Lifecycle, Clock]:
    clock = Clock(at)
    lc = bootstrap(settings, store, clock)
    await lc.start()
    return lc, clock


async def outbox(store: Store) -> list[tuple[str, Any]]:
    """(topic, event) of every outbox row, in commit order."""
    rows = store.db[OUTBOX].find({}, sort=[("seq", 1)])
    return [(row["topic"], decode(bytes(row["value"]))[1]) async for row in rows]


async def mails(store: Store, recipient: str | None = None) -> list[Any]:
    out = []
    for topic, event in await outbox(store):
        if topic == "notify.requests" and (recipient is None or event.recipient == recipient):
            out.append(opened_notice(event))
    return out


PASSWORD = "Kagi-test-2026!"  # noqa: S105 - test accounts


async def refused(awaitable: Any) -> Problem:
    """The problem ``awaitable`` raises (the test fails if it raises none)."""
    with pytest.raises(Problem) as caught:
        await awaitable
    return caught.value
