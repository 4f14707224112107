"""Audit of every company-admin and operator action, recorded at the one place all of them pass.

After the response, an ``AuditRecorded`` event (who, what, when, from where, result) goes to
``audit.events``; the audit service chains it into its ledger, once per event id. Publishing
never delays or fails the response: it runs in the background and retries until the broker takes it;
only entries still unsent when the gateway stops are lost, logged and counted
(``kagi_audit_publish_failures_total``). The gateway has no database for an outbox of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from kagi_shared.events import encode, new_envelope
from kagi_shared.events.audit import AuditRecorded
from kagi_shared.kafka import make_producer
from kagi_shared.logging import get_logger
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from kagi_shared.topics import AUDIT_EVENTS

log = get_logger(__name__)
AUDITED_ROLES = frozenset({"company_admin", "operator"})
READS_AUDITED_UNDER = "/api/v1/operator/"
PUBLISH_ATTEMPT_S = 10.0
PUBLISH_FAILURES = Counter("kagi_audit_publish_failures_total", "Audit events that could not be published")


def is_audited(caller: Caller | None, method: str, path: str) -> bool:
    if caller is None or not AUDITED_ROLES & set(caller.roles):
        return False
    return method not in ("GET", "HEAD", "OPTIONS") or path.startswith(READS_AUDITED_UNDER)


def outcome_of(status: int) -> str:
    return "success" if status < 400 else "refused" if status < 500 else "error"


class AuditPublisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

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
        task = asyncio.create_task(self._publish(envelope.subject.encode(), encode(envelope), envelope.id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, key: bytes, value: bytes, event_id: str) -> None:
        """Until the broker takes it: an outage of minutes (a broker restart, a partition leader moving) must
        not lose an audit entry. Each attempt is bounded, and a failed producer is replaced, because one whose
        broker went away can wait for metadata that never comes. Only a gateway stopped while a broker is
        still away loses what it holds (logged and counted at close)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                producer = await self._ready_producer()
                await asyncio.wait_for(producer.send_and_wait(AUDIT_EVENTS.name, value, key=key,
                                                              headers=[("ce_id", event_id.encode())]),
                                       PUBLISH_ATTEMPT_S)
                return
            except Exception as exc:
                log.warning("audit.publish_retry", event_id=event_id, attempt=attempt, error=repr(exc))
                await self._drop_producer()
                await asyncio.sleep(min(0.2 * 2**attempt, 15.0))

    async def _drop_producer(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)

    async def close(self) -> None:
        if self._pending:
            _, unsent = await asyncio.wait(self._pending, timeout=10)
            for task in unsent:
                task.cancel()
            if unsent:
                PUBLISH_FAILURES.inc(len(unsent))
                log.error("audit.publish_failed", unsent=len(unsent), reason="stopped while the broker was away")
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()


def caller_in(scope: Any) -> Caller | None:
    caller = scope.get("state", {}).get("caller")
    return caller if isinstance(caller, Caller) else None
