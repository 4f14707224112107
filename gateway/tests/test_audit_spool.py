"""Admin and operator actions survive a gateway that stops or dies while the broker is away: the spool."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import msgspec
from prometheus_client import REGISTRY

from kagi_gateway.app import create_app
from kagi_gateway.audit import AuditPublisher, AuditSpool, SpoolEntry
from kagi_shared.events import decode
from kagi_shared.events.audit import AuditRecorded
from kagi_shared.kafka import ensure_topics, make_consumer
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from kagi_shared.topics import AUDIT_EVENTS
from tests.support import read_from_now_on

OPERATOR = Caller(account_id="acct-op", login_id="op@example.jp", roles=("operator",), ip="133.11.0.1")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def entry(n: int) -> SpoolEntry:
    return SpoolEntry(id=f"e{n}", key="k", value=msgspec.Raw(b'{"n":%d}' % n))


def test_the_spool_keeps_only_what_was_not_sent_and_skips_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "audit-spool.jsonl"
    spool = AuditSpool(path)
    for n in range(3):
        spool.add(entry(n))
    spool.done("e1")
    with path.open("ab") as f:
        f.write(b'{"id":"e9","key":"k","va')  # killed mid-write: never acknowledged to anyone
    again = AuditSpool(path)
    # Every unsent entry comes back; a sent one may too (the file is compacted lazily; the audit service keeps
    # each event id once), the torn one does not.
    left = {e.id for e in again.load()}
    assert {"e0", "e2"} <= left <= {"e0", "e1", "e2"}
    assert path.read_bytes().count(b"\n") == len(left)  # rewritten without the torn line
    again.done("e1")
    again.done("e0")
    again.done("e2")
    again.done("e2")  # a second ack of the same entry changes nothing
    assert path.read_bytes() == b""
    assert AuditSpool(path).load() == []


async def test_entries_held_while_the_broker_is_away_are_sent_by_the_next_gateway(
        settings: Settings, tmp_path: Path) -> None:
    var = str(tmp_path / "var")
    away = msgspec.structs.replace(settings, var_dir=var,
                                   ports=msgspec.structs.replace(settings.ports, kafka=closed_port()))
    first = AuditPublisher(away)
    assert first.start() == 0
    for status in (200, 403, 500):
        first.record(OPERATOR, "POST", "/api/v1/operator/unlock-requests/{id}/approve",
                     "/api/v1/operator/unlock-requests/u1/approve", status, f"req-{status}")
    await first.close(wait_s=0.5)  # stopped while the broker is away: nothing was sent
    spooled = AuditSpool(first.spool.path).load()
    assert len(spooled) == 3

    await ensure_topics(settings, [AUDIT_EVENTS.name])
    consumer = make_consumer(settings, AUDIT_EVENTS.name, group_id=None, auto_offset_reset="latest",
                             enable_auto_commit=False)
    await consumer.start()
    try:
        await read_from_now_on(consumer)
        # The next gateway, started as `kagi run` starts it (its app's lifespan), with the broker back.
        app = create_app(msgspec.structs.replace(settings, var_dir=var))
        async with app.lifespan():
            wanted = {e.id for e in spooled}
            got: dict[str, int] = {}
            for _ in range(150):
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    for message in messages:
                        envelope, event = decode(message.value)
                        if envelope.id in wanted:
                            assert isinstance(event, AuditRecorded)
                            got[envelope.id] = event.status
                if set(got) == wanted:
                    break
            assert sorted(got.values()) == [200, 403, 500]
            spool = first.spool.path
            for _ in range(100):  # the acks empty the spool
                if spool.read_bytes() == b"":
                    break
                await asyncio.sleep(0.05)
            assert spool.read_bytes() == b""
    finally:
        await consumer.stop()


async def test_a_recorded_action_is_in_the_spool_until_the_broker_has_it(settings: Settings, tmp_path: Path) -> None:
    away = msgspec.structs.replace(settings, var_dir=str(tmp_path / "var"),
                                   ports=msgspec.structs.replace(settings.ports, kafka=closed_port()))
    publisher = AuditPublisher(away)
    publisher.start()
    publisher.record(OPERATOR, "POST", "/api/v1/operator/x", "/api/v1/operator/x", 200, "req-1")
    # On disk before any send was tried: a kill -9 now loses nothing; SREs see it waiting.
    [line] = publisher.spool.path.read_bytes().splitlines()
    assert msgspec.json.decode(line, type=SpoolEntry).id in publisher.spool.pending
    assert REGISTRY.get_sample_value("kagi_audit_spool_pending") == 1
    await publisher.close(wait_s=0.1)
