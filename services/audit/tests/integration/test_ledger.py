"""The ledger against the real database: one entry per event id, and tampering is detected."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kagi_audit.bootstrap import bootstrap
from kagi_shared.events import encode, new_envelope
from kagi_shared.events.audit import AuditRecorded
from kagi_shared.inbox import InboxConsumer
from kagi_shared.settings import Settings


def recorded(n: int) -> bytes:
    return encode(new_envelope(AuditRecorded(
        actor_id="op-1", actor_login_id="operator@example.jp", roles=["operator"], action="POST /api/v1/x",
        target=f"/api/v1/x/{n}", status=200, outcome="success", ip="127.0.0.1", request_id=f"r{n}",
        at=datetime.now(UTC)), source="kagi/gateway", subject="op-1"))


async def test_replayed_events_are_chained_once_and_tampering_is_detected(settings: Settings,
                                                                         store_factory: Any) -> None:
    store = await store_factory("audit")
    audit = bootstrap(settings, store)
    await audit.start()

    async def dead(*_: Any) -> None:
        raise AssertionError("nothing should be dead-lettered")

    consumer = InboxConsumer("audit", store, {AuditRecorded: audit.service.on_recorded}, dead, settings)
    events = [recorded(i) for i in range(6)]
    outcomes = [await consumer.process("audit.events", b"op-1", e) for e in [*events, events[2], events[4]]]
    assert outcomes.count("handled") == 6 and outcomes.count("duplicate") == 2

    verdict = await audit.service.verify()
    assert verdict.ok and verdict.entries == 6
    assert [e["target"] for e in [link.entry for link in await audit.ledger.recent(limit=10)]] == \
        [f"/api/v1/x/{i}" for i in reversed(range(6))]

    await store.db["ledger"].update_one({"_id": 4}, {"$set": {"entry.outcome": "refused"}})
    broken = await audit.service.verify()
    assert not broken.ok and broken.broken_at == 4

    await store.db["ledger"].update_one({"_id": 4}, {"$set": {"entry.outcome": "success"}})
    await store.db["ledger"].delete_one({"_id": 3})
    assert (await audit.service.verify()).broken_at == 3
