"""Audit of every company-admin and operator action, recorded at the one place all of them pass.

After the response, an ``AuditRecorded`` event (who, what, when, from where, result) goes to
``audit.events``; the audit service chains it into its ledger, once per event id. Publishing
never delays or fails the response: it runs in the background and retries until the broker takes it.

The gateway has no database for an outbox of its own, so each entry is first appended to a spool file
(``<var>/gateway/audit-spool.jsonl``, fsynced; an emptyDir in Kubernetes) and leaves it once the broker has
it. A gateway killed, or stopped while the broker is away, sends what its spool holds when it starts again;
one sent twice (killed between the broker's ack and the spool's update) is kept once by the audit service.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from kagi_shared.events import decode_envelope, encode, kafka_headers, new_envelope
from kagi_shared.events.audit import AuditRecorded
from kagi_shared.kafka import make_producer
from kagi_shared.logging import get_logger
from kagi_shared.metrics import AUDIT_SPOOL_PENDING
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from kagi_shared.topics import AUDIT_EVENTS

log = get_logger(__name__)
AUDITED_ROLES = frozenset({"company_admin", "operator", "support"})
READS_AUDITED_UNDER = ("/api/v1/operator/", "/operator")  # the operator API and its console pages
PUBLISH_ATTEMPT_S = 10.0
PUBLISH_FAILURES = Counter("kagi_audit_publish_failures_total",
                           "Audit events left in the spool when the gateway stopped (sent at its next start)")
SPOOL_COMPACT_AFTER = 1000


class SpoolEntry(msgspec.Struct, frozen=True):
    id: str
    key: str
    value: msgspec.Raw
    """The encoded envelope itself (JSON), kept as it will be sent."""


class AuditSpool:
    """Audit entries the broker has not taken yet, one JSON line each, on local disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: dict[str, SpoolEntry] = {}
        self._done_since_compaction = 0

    def load(self) -> list[SpoolEntry]:
        """What an earlier gateway left unsent; a line torn by a kill mid-write is skipped (it was never
        acknowledged to anyone: the write had not returned)."""
        entries: dict[str, SpoolEntry] = {}
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                try:
                    entry = msgspec.json.decode(line, type=SpoolEntry)
                except msgspec.DecodeError:
                    log.warning("audit.spool_line_skipped", path=str(self.path), size=len(line))
                    continue
                entries[entry.id] = entry
        self.pending = entries
        AUDIT_SPOOL_PENDING.set(len(entries))
        self._rewrite()
        return list(entries.values())

    def add(self, entry: SpoolEntry) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_synced(self.path, "ab", [entry])
        self.pending[entry.id] = entry
        AUDIT_SPOOL_PENDING.set(len(self.pending))

    def done(self, event_id: str) -> None:
        if self.pending.pop(event_id, None) is None:
            return
        AUDIT_SPOOL_PENDING.set(len(self.pending))
        self._done_since_compaction += 1
        if not self.pending or self._done_since_compaction >= SPOOL_COMPACT_AFTER:
            self._rewrite()

    def _rewrite(self) -> None:
        """The file becomes exactly the pending entries (atomically: a kill leaves the old or the new file)."""
        self._done_since_compaction = 0
        if not self.pending and not self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = self.path.with_suffix(".tmp")
        _write_synced(fresh, "wb", self.pending.values())
        os.replace(fresh, self.path)


def _write_synced(path: Path, mode: str, entries: Iterable[SpoolEntry]) -> None:
    """One JSON line per entry, on disk before this returns."""
    with path.open(mode) as spool:
        spool.writelines(msgspec.json.encode(e) + b"\n" for e in entries)
        spool.flush()
        os.fsync(spool.fileno())


LOGIN_PATH = "/api/v1/auth/login"
ANONYMOUS = "anonymous"


def is_audited(caller: Caller | None, method: str, path: str, status: int = 200) -> bool:
    """Admin and operator actions, and (ASVS V16) every failed login and every 401/403 answer, whoever asked."""
    if status in (401, 403) or (path == LOGIN_PATH and 400 <= status < 500 and status != 429):
        return True
    if caller is None or not AUDITED_ROLES & set(caller.roles):
        return False
    return method not in ("GET", "HEAD", "OPTIONS") or path.startswith(READS_AUDITED_UNDER)


def anonymous_caller(scope: Any) -> Caller:
    """Who a refused request came from: the token's account if it had a valid one, else the address and the
    login ID it tried."""
    state = scope.get("state", {})
    client = scope.get("client")
    ip = state.get("client_ip") or (client[0] if client else None)
    claimed = state.get("token_caller")
    if isinstance(claimed, Caller):  # a valid token the guard refused: who it names
        return Caller(account_id=claimed.account_id, login_id=claimed.login_id, email=claimed.email,
                      roles=claimed.roles, ip=str(ip) if ip else None)
    return Caller(account_id=ANONYMOUS, login_id=str(state.get("login_attempt", ""))[:256],
                  ip=str(ip) if ip else None)


def outcome_of(status: int) -> str:
    return "success" if status < 400 else "refused" if status < 500 else "error"


class AuditPublisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self.spool = AuditSpool(settings.var_path / "gateway" / "audit-spool.jsonl")

    def start(self) -> int:
        """Send what an earlier gateway left in the spool; returns how many entries that is."""
        try:
            left = self.spool.load()
        except OSError as exc:  # an unreadable spool must not keep the gateway down; new entries still go out
            log.error("audit.spool_unreadable", path=str(self.spool.path), error=repr(exc))
            return 0
        for entry in left:
            self._send(entry)
        if left:
            log.info("audit.spool_resent", entries=len(left))
        return len(left)

    async def _ready_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.settings, "kagi-gateway-audit")
                await producer.start()
                self._producer = producer
        return self._producer

    def record(self, caller: Caller, method: str, route: str, path: str, status: int,
               request_id: str | None) -> None:
        event = AuditRecorded(
            actor_id=caller.account_id, actor_login_id=caller.login_id, roles=list(caller.roles),
            action=f"{method} {route}", target=path, status=status, outcome=outcome_of(status),
            ip=caller.ip, request_id=request_id, at=datetime.now(UTC))
        envelope = new_envelope(event, source="kagi/gateway", subject=caller.account_id, correlation_id=request_id)
        entry = SpoolEntry(id=envelope.id, key=envelope.subject, value=msgspec.Raw(encode(envelope)))
        try:
            self.spool.add(entry)
        except OSError as exc:  # a full or read-only disk must not fail the response; the send still runs
            log.error("audit.spool_write_failed", event_id=entry.id, error=repr(exc))
        self._send(entry)

    def _send(self, entry: SpoolEntry) -> None:
        task = asyncio.create_task(self._publish(entry.key.encode(), bytes(entry.value), entry.id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, key: bytes, value: bytes, event_id: str) -> None:
        """Until the broker takes it: an outage of minutes (a broker restart, a partition leader moving) must
        not lose an audit entry. Each attempt is bounded, and a failed producer is replaced, because one whose
        broker went away can wait for metadata that never comes. What a gateway stopped while the broker is
        still away holds stays in the spool for its next start."""
        attempt = 0
        while True:
            attempt += 1
            try:
                producer = await self._ready_producer()
                await asyncio.wait_for(producer.send_and_wait(AUDIT_EVENTS.name, value, key=key,
                                                              headers=kafka_headers(decode_envelope(value))),
                                       PUBLISH_ATTEMPT_S)
            except Exception as exc:
                log.warning("audit.publish_retry", event_id=event_id, attempt=attempt, error=repr(exc))
                await self._drop_producer()
                await asyncio.sleep(min(0.2 * 2**attempt, 15.0))
            else:
                try:
                    self.spool.done(event_id)
                except OSError as exc:  # sent; at worst it is sent again at the next start (kept once)
                    log.warning("audit.spool_update_failed", event_id=event_id, error=repr(exc))
                return

    async def _drop_producer(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)

    async def close(self, wait_s: float = 10.0) -> None:
        if self._pending:
            _, unsent = await asyncio.wait(self._pending, timeout=wait_s)
            for task in unsent:
                task.cancel()
            if unsent:
                PUBLISH_FAILURES.inc(len(unsent))
                log.error("audit.publish_deferred", unsent=len(unsent), spool=str(self.spool.path),
                          reason="stopped while the broker was away; sent at the next start")
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()


def caller_in(scope: Any) -> Caller | None:
    caller = scope.get("state", {}).get("caller")
    return caller if isinstance(caller, Caller) else None
