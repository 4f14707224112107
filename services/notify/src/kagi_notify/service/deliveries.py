"""Notify's use cases: record one delivery per request event, then dispatch with retries.

Recording happens in the consumer's transaction (inbox row + delivery row), so a
redelivered event never makes a second delivery. Dispatching is a separate loop that
claims due deliveries, so an SMTP server that is down only delays mail: every delivery
is retried with exponential backoff until it is sent or, after N attempts, dead-lettered.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import msgspec

from kagi_notify.adapters.mailer import SmtpMailer, build_message
from kagi_notify.adapters.repository import DeliveryRepository
from kagi_notify.domain.deliveries import Delivery, address_problem, next_attempt
from kagi_notify.domain.templates import Catalogue, TemplateError
from kagi_shared.events import Envelope, new_envelope
from kagi_shared.events import notify as ev
from kagi_shared.inbox import DeadLetterSink
from kagi_shared.logging import get_logger
from kagi_shared.mongo import Store, Tx
from kagi_shared.settings import Settings
from kagi_shared.topics import NOTIFY_DELIVERIES, NOTIFY_REQUESTS

log = get_logger(__name__)
SOURCE = "kagi/notify"
CLAIM_S = 60


class NotifyService:
    def __init__(self, store: Store, repo: DeliveryRepository, catalogue: Catalogue, mailer: SmtpMailer,
                 settings: Settings, dead_letter: DeadLetterSink | None = None) -> None:
        self.store = store
        self.repo = repo
        self.catalogue = catalogue
        self.mailer = mailer
        self.settings = settings
        self.dead_letter = dead_letter
        self.wake = asyncio.Event()

    async def on_request(self, envelope: Envelope, event: ev.NotificationRequested, tx: Tx) -> None:
        now = datetime.now(UTC)
        delivery = Delivery(
            id=envelope.id, template=event.template, channel=event.channel, recipient=event.recipient,
            category=event.category, variables=event.variables, account_id=event.account_id,
            next_attempt_at=now, created_at=now, correlation_id=envelope.correlationid,
        )
        await self.repo.add(tx, delivery)
        self.wake.set()

    async def dispatch_due(self) -> int:
        now = datetime.now(UTC)
        done = 0
        for delivery in await self.repo.due(now):
            if await self._claim(delivery, now):
                await self.attempt(delivery)
                done += 1
        return done

    async def _claim(self, delivery: Delivery, now: datetime) -> bool:
        """Only one dispatcher sends a delivery: push its next attempt out while this one tries."""
        result = await self.repo.collection.update_one(
            {"_id": delivery.id, "status": {"$in": ["queued", "failed"]}, "next_attempt_at": {"$lte": now}},
            {"$set": {"next_attempt_at": now + timedelta(seconds=CLAIM_S)}},
        )
        return result.modified_count == 1

    async def attempt(self, delivery: Delivery) -> None:
        attempts = delivery.attempts + 1
        try:
            permanent = address_problem(delivery.recipient)
            if permanent:
                await self._give_up(delivery, attempts, permanent)
                return
            rendered = self.catalogue.render(delivery.template, delivery.variables)
        except TemplateError as exc:
            await self._give_up(delivery, attempts, str(exc))
            return
        unsubscribe = f"{self.settings.brand.portal_url}/settings/notifications" \
            if delivery.category == "general" else None
        message = build_message(delivery_id=delivery.id, sender=self.settings.smtp.sender,
                                recipient=delivery.recipient, rendered=rendered,
                                when_rfc2822=format_datetime(datetime.now(UTC)), unsubscribe_url=unsubscribe)
        try:
            await self.mailer.send(message)
        except Exception as exc:
            await self._failed(delivery, attempts, f"{type(exc).__name__}: {exc}")
            return
        await self._sent(delivery, attempts)

    def _scrubbed(self, delivery: Delivery) -> dict[str, str]:
        secret = self.catalogue.spec(delivery.template).secret if delivery.template in self.catalogue.specs \
            else frozenset()
        return {k: ("***" if k in secret else v) for k, v in delivery.variables.items()}

    async def _sent(self, delivery: Delivery, attempts: int) -> None:
        now = datetime.now(UTC)

        async def work(tx: Tx) -> None:
            await self.repo.update(tx, delivery.id, {"status": "sent", "attempts": attempts, "sent_at": now,
                                                     "variables": self._scrubbed(delivery), "last_error": None})
            tx.publish(NOTIFY_DELIVERIES.name, new_envelope(
                ev.NotificationDelivered(delivery_id=delivery.id, template=delivery.template,
                                         channel="mail", recipient=delivery.recipient, attempts=attempts),
                source=SOURCE, subject=delivery.id, correlation_id=delivery.correlation_id))

        await self.store.transaction(work)
        log.info("notify.sent", delivery_id=delivery.id, template=delivery.template, attempts=attempts)

    async def _failed(self, delivery: Delivery, attempts: int, error: str) -> None:
        if attempts >= self.settings.notify.max_attempts:
            await self._give_up(delivery, attempts, error)
            return
        retry_at = next_attempt(datetime.now(UTC), attempts, self.settings.notify.retry_base_s)
        await self.repo.update(None, delivery.id, {"status": "failed", "attempts": attempts,
                                                   "next_attempt_at": retry_at, "last_error": error})
        log.warning("notify.attempt_failed", delivery_id=delivery.id, attempts=attempts, error=error)

    async def _give_up(self, delivery: Delivery, attempts: int, error: str) -> None:
        async def work(tx: Tx) -> None:
            await self.repo.update(tx, delivery.id, {"status": "dead", "attempts": attempts, "last_error": error,
                                                     "variables": self._scrubbed(delivery)})
            tx.publish(NOTIFY_DELIVERIES.name, new_envelope(
                ev.NotificationFailed(delivery_id=delivery.id, template=delivery.template, channel="mail",
                                      recipient=delivery.recipient, attempts=attempts, reason=error),
                source=SOURCE, subject=delivery.id, correlation_id=delivery.correlation_id))

        await self.store.transaction(work)
        if self.dead_letter is not None:
            record = msgspec.json.encode({"deliveryId": delivery.id, "template": delivery.template,
                                          "recipient": delivery.recipient, "variables": self._scrubbed(delivery)})
            await self.dead_letter(NOTIFY_REQUESTS.dlt, delivery.recipient.encode(), record,
                                   [("dlt_error", error[:1000].encode()), ("dlt_consumer", b"notify.dispatcher")])
        log.error("notify.dead", delivery_id=delivery.id, attempts=attempts, error=error)

    async def run_dispatcher(self, stop: asyncio.Event) -> None:
        poll = self.settings.notify.dispatch_poll_s
        while not stop.is_set():
            self.wake.clear()
            try:
                if await self.dispatch_due():
                    continue
            except Exception as exc:  # the database may be down: wait and try again
                log.warning("notify.dispatch_error", error=repr(exc))
            tasks = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(tasks, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()
