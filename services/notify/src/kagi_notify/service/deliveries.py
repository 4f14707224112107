"""Notify's use cases: record one delivery per request event, then dispatch with retries.

Recording happens in the consumer's transaction (inbox row + delivery row), so a
redelivered event never makes a second delivery. A general notice to someone who switched
general notices off is recorded as ``skipped`` and never sent. Dispatching is a separate
loop that claims due deliveries. An SMTP server that is down (unreachable, timing out,
answering 421) only delays mail, for however long it lasts: no message is at fault, so no
attempt is spent; the channel's breaker holds every delivery and probes the server with
capped exponential backoff, and mail flows again once a probe goes through. A message
the server refuses for now (4xx for its recipient) is retried with exponential backoff
and, after N attempts, dead-lettered. What can never succeed (a bad address, an unknown
template, a missing variable, a refused mailbox) is dead at once with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

import msgspec
from prometheus_client import Gauge

from kagi_notify.adapters.channels import Channel
from kagi_notify.adapters.mailer import PermanentError, ServerUnavailable
from kagi_notify.adapters.repository import DeliveryRepository, PreferenceRepository
from kagi_notify.domain.deliveries import Delivery, next_attempt, recipient_problem
from kagi_notify.domain.outage import Outage
from kagi_notify.domain.preferences import OPTIONAL_CATEGORIES, SKIP_REASON, should_send
from kagi_notify.domain.templates import Catalogue, Rendered
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import Envelope, new_envelope
from kagi_shared.events import lifecycle as lev
from kagi_shared.events import notify as ev
from kagi_shared.inbox import DeadLetterSink
from kagi_shared.logging import get_logger
from kagi_shared.metrics import DELIVERIES
from kagi_shared.mongo import Store, Tx
from kagi_shared.sealing import Sealer
from kagi_shared.settings import Settings
from kagi_shared.topics import NOTIFY_DELIVERIES, NOTIFY_REQUESTS

log = get_logger(__name__)
SOURCE = "kagi/notify"
CLAIM_S = 60
DISPATCH_LIMIT = 200
"""Due deliveries one dispatcher pass claims at most."""
SERVER_UNAVAILABLE = Gauge("kagi_notify_server_unavailable",
                           "1 while a channel's server is unreachable and its deliveries wait", ["channel"])

Outcome = Literal["sent", "retry", "dead", "held"]
"""``held``: not tried, or the server was unavailable; waits for it without spending an attempt."""


class NotifyService:
    def __init__(self, store: Store, repo: DeliveryRepository, catalogue: Catalogue, channels: Mapping[str, Channel],
                 settings: Settings, dead_letter: DeadLetterSink | None = None,
                 preferences: PreferenceRepository | None = None, *, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.store = store
        self.repo = repo
        self.catalogue = catalogue
        self.channels = dict(channels)
        self.settings = settings
        self.dead_letter = dead_letter
        self.preferences = preferences or PreferenceRepository(store)
        self.wake = asyncio.Event()
        self.outages: dict[str, Outage] = {}
        self.due_left = False
        """The last ``dispatch_due`` found as many due as it may take: more may be due."""

    # -- recording -------------------------------------------------------------------------------
    async def on_request(self, envelope: Envelope, event: ev.NotificationRequested, tx: Tx) -> None:
        # A request that does not open (another key, altered, forged by someone without the key) raises:
        # retried, then dead-lettered still sealed, to be replayed once notify holds the right key.
        notice = ev.opened(self.settings.security.notify_key, event)
        await self.record(tx, envelope.id, template=notice.template, channel=notice.channel,
                          recipient=notice.recipient, category=notice.category, variables=notice.variables,
                          account_id=notice.account_id, correlation_id=envelope.correlationid)

    async def on_account_created(self, envelope: Envelope, event: lev.AccountCreated, tx: Tx) -> None:
        """Remember the account's address, so general notices addressed by mail alone honour its choice."""
        if event.email:
            await self.preferences.remember_email(tx, event.account_id, event.email)

    async def on_account_purged(self, envelope: Envelope, event: lev.AccountPurged, tx: Tx) -> None:
        """The ID is gone: so is what notify kept about it (its address and choice)."""
        await self.preferences.forget(tx, event.account_id)

    async def record(self, tx: Tx, delivery_id: str | None = None, *, template: str, channel: str, recipient: str,
                     category: str, variables: dict[str, str], account_id: str | None = None,
                     correlation_id: str | None = None) -> Delivery:
        """One delivery row in the caller's transaction; ``skipped`` if the recipient opted out of its category."""
        now = self.clock()
        delivery = Delivery(
            id=delivery_id or str(uuid.uuid4()), template=template, channel=channel, recipient=recipient,
            category=category, variables=variables, account_id=account_id, next_attempt_at=now, created_at=now,
            correlation_id=correlation_id,
        )
        optional = category in OPTIONAL_CATEGORIES
        prefs = await self.preferences.for_recipient(tx, account_id, recipient) if optional else None
        sending = should_send(category, prefs)
        secret = {k: v for k, v in variables.items() if k in self._secret_names(template, variables)}
        if secret and sending:
            delivery.sealed = self._sealer().seal(msgspec.json.encode(secret), _row(delivery))
        delivery.variables = self._scrubbed(delivery)
        if not sending:
            delivery.status = "skipped"
            delivery.last_error = SKIP_REASON
            await self.repo.add(tx, delivery)
            tx.publish(NOTIFY_DELIVERIES.name, new_envelope(
                ev.NotificationSkipped(delivery_id=delivery.id, template=template, channel=_channel(channel),
                                       recipient=recipient, reason=SKIP_REASON),
                source=SOURCE, subject=delivery.id, correlation_id=correlation_id))
            log.info("notify.skipped", delivery_id=delivery.id, template=template, category=category)
            return delivery
        await self.repo.add(tx, delivery)
        tx.after_commit(self.wake.set)
        return delivery

    # -- dispatching -----------------------------------------------------------------------------
    async def dispatch_due(self, limit: int = DISPATCH_LIMIT) -> int:
        """Claim what is due, send a few at a time, and record the sent ones in one transaction.

        The claim pushes each delivery's next attempt out, so a concurrent dispatcher skips it; if this
        process dies before recording, the claim lapses and the delivery is tried again (same Message-ID).
        Channels whose server is down are left alone until their next probe is due.
        """
        now = self.clock()
        waiting = [channel for channel, outage in self.outages.items() if not outage.allows(now)]
        due = await self.repo.due(now, limit, skip_channels=waiting)
        self.due_left = len(due) >= limit
        if not due:
            return 0
        concurrency = max(1, self.settings.notify.dispatch_concurrency)
        # Held long enough for the whole batch even if every send runs into the SMTP timeout.
        hold_s = CLAIM_S + -(-len(due) // concurrency) * self.settings.notify.smtp_timeout_s
        claimed = await self.repo.claim([d.id for d in due], now, now + timedelta(seconds=hold_s))
        gate = asyncio.Semaphore(concurrency)
        probes = {channel: asyncio.Lock() for channel in {d.channel for d in claimed}}

        async def one(delivery: Delivery) -> Outcome:
            async with gate:
                if not self._outage(delivery.channel).down:
                    return await self.attempt(delivery, record=False)
                # A probe of a server that was down: one try at a time, so the first answer decides for the rest.
                async with probes[delivery.channel]:
                    return await self.attempt(delivery, record=False)

        # One lane per recipient and channel, sent in the order asked for: a person reads the seed's pairs
        # (認証情報登録手順のご案内, then its one-time password) in that order. Lanes run side by side.
        lanes: dict[tuple[str, str], list[int]] = {}
        for index, delivery in enumerate(claimed):
            lanes.setdefault((delivery.channel, delivery.recipient.lower()), []).append(index)
        results: list[Outcome | BaseException] = [RuntimeError("not attempted")] * len(claimed)

        async def lane(indexes: list[int]) -> None:
            for index in indexes:
                try:
                    results[index] = await one(claimed[index])
                except Exception as exc:  # recorded below like any failed send
                    results[index] = exc

        await asyncio.gather(*(lane(indexes) for indexes in lanes.values()))
        for result in results:
            if isinstance(result, BaseException):  # the database went away mid-batch: the claim lapses, retried
                log.warning("notify.dispatch_error", error=repr(result))
        await self._sent([d for d, r in zip(claimed, results, strict=True) if r == "sent"])
        await self._hold([d for d, r in zip(claimed, results, strict=True) if r == "held"])
        return len(claimed)

    def prepare(self, delivery: Delivery) -> tuple[Channel, Rendered]:
        """Everything that fails the same way on every attempt; raises ``PermanentError`` with the reason."""
        channel = self.channels.get(delivery.channel)
        if channel is None:
            raise PermanentError(f"no sender for channel {delivery.channel!r}")
        problem = recipient_problem(delivery.channel, delivery.recipient)
        if problem:
            raise PermanentError(problem)
        try:
            spec = self.catalogue.spec(delivery.template)
            if spec.channel != delivery.channel:
                raise PermanentError(f"template {delivery.template} is for {spec.channel}, not {delivery.channel}")
            return channel, self.catalogue.render(delivery.template, self.opened_variables(delivery))
        except PermanentError:
            raise
        except Exception as exc:  # unknown template, missing variable, a filter failing on a value …
            raise PermanentError(str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}") \
                from exc

    async def attempt(self, delivery: Delivery, *, record: bool = True) -> Outcome:
        """One try. ``sent`` and ``held`` are recorded now, or by the caller's batch when ``record`` is off."""
        if not self._outage(delivery.channel).allows(self.clock()):
            outcome: Outcome = "held"
        else:
            try:
                channel, rendered = self.prepare(delivery)
                await channel.send(delivery, rendered)
                outcome = "sent"
            except PermanentError as exc:
                await self._give_up(delivery, delivery.attempts + 1, str(exc))
                return "dead"
            except ServerUnavailable as exc:
                self._unavailable(delivery.channel, str(exc))
                outcome = "held"
            except Exception as exc:  # the server answered, refusing this message for now: an attempt spent
                self._reachable(delivery.channel)
                await self._failed(delivery, delivery.attempts + 1, f"{type(exc).__name__}: {exc}")
                return "dead" if delivery.attempts + 1 >= self.settings.notify.max_attempts else "retry"
            else:
                self._reachable(delivery.channel)
        if record:
            await (self._sent if outcome == "sent" else self._hold)([delivery])
        return outcome

    # -- the channels' servers -------------------------------------------------------------------
    def _outage(self, channel: str) -> Outage:
        if channel not in self.outages:
            self.outages[channel] = Outage(self.settings.notify.retry_base_s, self.settings.notify.outage_retry_cap_s)
        return self.outages[channel]

    def _unavailable(self, channel: str, error: str) -> None:
        now = self.clock()
        outage = self._outage(channel)
        was_down = outage.down
        if not outage.failed(now, error):
            return
        SERVER_UNAVAILABLE.labels(channel).set(1)
        retry_in_s = round(((outage.retry_at or now) - now).total_seconds(), 3)
        if was_down:
            log.warning("notify.server_still_unavailable", channel=channel, probes=outage.probes,
                        retry_in_s=retry_in_s, error=error)
        else:
            log.error("notify.server_unavailable", channel=channel, retry_in_s=retry_in_s, error=error)

    def _reachable(self, channel: str) -> None:
        outage = self.outages.get(channel)
        if outage is None or not outage.down:
            return
        down_for = outage.recovered(self.clock())
        SERVER_UNAVAILABLE.labels(channel).set(0)
        log.warning("notify.server_recovered", channel=channel,
                    down_s=round(down_for.total_seconds(), 3) if down_for else 0.0)

    def next_probe_in(self, now: datetime) -> float | None:
        """Seconds until the earliest probe still ahead; ``None`` if none is (a probe already due waits for
        mail to try it with: a 0 here would spin the loop)."""
        waits = [(o.retry_at - now).total_seconds() for o in self.outages.values()
                 if o.retry_at is not None and o.retry_at > now]
        return min(waits) if waits else None

    def _sealer(self) -> Sealer:
        return Sealer(self.settings.security.notify_key, "notify.deliveries secret variables")

    def opened_variables(self, delivery: Delivery) -> dict[str, str]:
        """Every variable the template needs, the sealed secret ones opened: only to render."""
        if not delivery.sealed:
            return delivery.variables
        opened = msgspec.json.decode(self._sealer().open(delivery.sealed, _row(delivery)), type=dict[str, str])
        return {**delivery.variables, **opened}

    def _secret_names(self, template: str, variables: Mapping[str, str]) -> frozenset[str]:
        spec = self.catalogue.specs.get(template)
        return frozenset(variables) if spec is None else spec.secret  # unknown: nothing says which are not

    def _scrubbed(self, delivery: Delivery) -> dict[str, str]:
        secret = self._secret_names(delivery.template, delivery.variables)
        return {k: ("***" if k in secret else v) for k, v in delivery.variables.items()}

    async def _sent(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        now = self.clock()

        async def work(tx: Tx) -> None:
            await self.repo.update_many(tx, {
                d.id: {"status": "sent", "attempts": d.attempts + 1, "sent_at": now, "variables": self._scrubbed(d),
                       "sealed": "",
                       "last_error": None} for d in deliveries})
            for d in deliveries:
                tx.publish(NOTIFY_DELIVERIES.name, new_envelope(
                    ev.NotificationDelivered(delivery_id=d.id, template=d.template, channel=_channel(d.channel),
                                             recipient=d.recipient, attempts=d.attempts + 1),
                    source=SOURCE, subject=d.id, correlation_id=d.correlation_id))

        await self.store.transaction(work)
        for d in deliveries:
            DELIVERIES.labels(d.channel, d.template, "sent").inc()
            log.info("notify.sent", delivery_id=d.id, template=d.template, attempts=d.attempts + 1)

    async def _hold(self, deliveries: list[Delivery]) -> None:
        """Back in the queue, as they were (no attempt spent), due when their server is probed next."""
        now = self.clock()
        for channel in {d.channel for d in deliveries}:
            outage = self._outage(channel)
            mine = [d for d in deliveries if d.channel == channel]
            # A server already back (another try went through meanwhile) gets them at once.
            await self.repo.hold([d.id for d in mine], outage.retry_at or now,
                                 f"waiting for the {channel} server: {outage.error}" if outage.error else None)
            for d in mine:
                DELIVERIES.labels(d.channel, d.template, "held").inc()

    async def _failed(self, delivery: Delivery, attempts: int, error: str) -> None:
        if attempts >= self.settings.notify.max_attempts:
            await self._give_up(delivery, attempts, error)
            return
        retry_at = next_attempt(self.clock(), attempts, self.settings.notify.retry_base_s)
        await self.repo.update(None, delivery.id, {"status": "failed", "attempts": attempts,
                                                   "next_attempt_at": retry_at, "last_error": error})
        DELIVERIES.labels(delivery.channel, delivery.template, "failed").inc()
        log.warning("notify.attempt_failed", delivery_id=delivery.id, attempts=attempts, error=error)

    async def _give_up(self, delivery: Delivery, attempts: int, error: str) -> None:
        DELIVERIES.labels(delivery.channel, delivery.template, "dead").inc()
        async def work(tx: Tx) -> None:
            await self.repo.update(tx, delivery.id, {"status": "dead", "attempts": attempts, "last_error": error,
                                                     "variables": self._scrubbed(delivery), "sealed": ""})
            tx.publish(NOTIFY_DELIVERIES.name, new_envelope(
                ev.NotificationFailed(delivery_id=delivery.id, template=delivery.template,
                                      channel=_channel(delivery.channel), recipient=delivery.recipient,
                                      attempts=attempts, reason=error),
                source=SOURCE, subject=delivery.id, correlation_id=delivery.correlation_id))

        await self.store.transaction(work)
        if self.dead_letter is not None:
            record = msgspec.json.encode({"deliveryId": delivery.id, "template": delivery.template,
                                          "recipient": delivery.recipient, "variables": self._scrubbed(delivery)})
            await self.dead_letter(NOTIFY_REQUESTS.dlt, delivery.recipient.encode(), record,
                                   [("dlt_error", error[:1000].encode()), ("dlt_consumer", b"notify.dispatcher")])
        log.error("notify.dead", delivery_id=delivery.id, attempts=attempts, error=error)

    async def idle_wait(self, live: bool) -> float:
        """How long the dispatcher may sleep after a pass that sent nothing, unless it is woken first.

        While the change stream on the deliveries is open, every new delivery wakes it (whichever process recorded
        it), so it sleeps until the earliest retry or probe is due, at most ``dispatch_idle_max_s``. Without the
        stream it polls every ``dispatch_poll_s``.
        """
        notify = self.settings.notify
        now = self.clock()
        probe = self.next_probe_in(now)
        if not live:
            return notify.dispatch_poll_s if probe is None else min(notify.dispatch_poll_s, probe)
        waiting = [channel for channel, outage in self.outages.items() if not outage.allows(now)]
        due = await self.repo.next_attempt_at(waiting)
        waits = [notify.dispatch_idle_max_s]
        if probe is not None:
            waits.append(probe)
        if due is not None:
            # Never 0: a due delivery the last pass left (a lapsing claim) must not make this loop spin.
            waits.append(max((due - now).total_seconds(), notify.dispatch_poll_s / 20))
        return min(waits)

    async def run_dispatcher(self, stop: asyncio.Event) -> None:
        # The same change-stream wait as the outbox relay's: one getMore per that while idle.
        watch = self.repo.insert_watch(self.wake, self.settings.outbox.watch_await_s)
        watcher = asyncio.create_task(watch.run())
        try:
            while not stop.is_set():
                self.wake.clear()
                try:
                    # Fewer due than a pass takes: every one due when it looked was taken. What is recorded since
                    # wakes this loop (the stream, or this process's commit), so with the stream open a second
                    # look now would find nothing; without it, look again at once as before.
                    if await self.dispatch_due(DISPATCH_LIMIT) and (self.due_left or not watch.live):
                        continue
                    timeout = await self.idle_wait(watch.live)
                except Exception as exc:  # the database may be down: wait and try again
                    log.warning("notify.dispatch_error", error=repr(exc))
                    timeout = self.settings.notify.dispatch_poll_s
                tasks = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for t in tasks:
                    t.cancel()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher


def _channel(channel: str) -> ev.Channel:
    return "sms" if channel == "sms" else "mail"


def _row(delivery: Delivery) -> bytes:
    """What a delivery's sealed variables are bound to: copied onto another row, they do not open."""
    return msgspec.json.encode([delivery.id, delivery.template, delivery.channel, delivery.recipient])
