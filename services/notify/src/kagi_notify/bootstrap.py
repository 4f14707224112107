"""Composition root of the notify service."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kagi_notify.adapters.channels import Channel, MailChannel, SmsChannel
from kagi_notify.adapters.mailer import SmtpMailer, SmtpTarget
from kagi_notify.adapters.repository import AdminContactRepository, DeliveryRepository, PreferenceRepository
from kagi_notify.adapters.sms import FileSmsSender, SmsSender
from kagi_notify.adapters.template_files import read_catalogue, sender_addresses
from kagi_notify.domain.templates import Catalogue
from kagi_notify.service.admin_contacts import AdminContactService
from kagi_notify.service.deliveries import NotifyService
from kagi_notify.service.preferences import PreferenceService
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import lifecycle as lev
from kagi_shared.events import notify as ev
from kagi_shared.inbox import DeadLetterSink, Handler, InboxConsumer
from kagi_shared.jobs import WorkerPlan
from kagi_shared.metrics import DELIVERIES, prime
from kagi_shared.mongo import ServiceRoot, Store
from kagi_shared.settings import Settings
from kagi_shared.topics import CATALOGUE, LIFECYCLE_EVENTS, NOTIFY_REQUESTS

NAME = "notify"
# Each topic's messages are handled in turn; one transaction per event (inbox row + delivery) on the embedded
# database held mails back by tens of seconds at 32 concurrent invitation flows. A batch is one transaction,
# and a failing batch falls back to one event at a time.
BATCH = 100
BATCH_WITHIN_S = 0.05


@dataclass
class Notify(ServiceRoot):
    deliveries: DeliveryRepository
    service: NotifyService
    preferences: PreferenceService
    admin_contacts: AdminContactService

    async def start(self) -> None:
        await self.store.ensure_indexes(self.deliveries, self.preferences.repo, self.admin_contacts.contacts)


def load_catalogue(settings: Settings) -> Catalogue:
    catalogue = read_catalogue(settings.brand.name, settings.brand.portal_url,
                               senders=sender_addresses(settings.smtp))
    # Every template's series from the start: "mails went dead" must see the first one.
    prime(DELIVERIES, *((spec.channel, name, result) for name, spec in catalogue.specs.items()
                        for result in ("sent", "held", "failed", "dead")))
    return catalogue


def sms_directory(settings: Settings) -> Path:
    return Path(settings.notify.sms_dir) if settings.notify.sms_dir else settings.var_path / "sms"


def sms_sender(settings: Settings) -> SmsSender:
    # One kind today; a real SMS gateway is another branch on settings.notify.sms_sender.
    return FileSmsSender(sms_directory(settings))


def bootstrap(settings: Settings, store: Store | None = None, dead_letter: DeadLetterSink | None = None,
              channels: Mapping[str, Channel] | None = None, clock: Clock = utc_now) -> Notify:
    store = store or Store.of(settings, NAME)
    repo = DeliveryRepository(store)
    preferences = PreferenceRepository(store)
    if channels is None:
        mailer = SmtpMailer(SmtpTarget.parse(settings.smtp_url), settings.notify.smtp_timeout_s)
        channels = {"mail": MailChannel(mailer, settings), "sms": SmsChannel(sms_sender(settings), settings)}
    service = NotifyService(store, repo, load_catalogue(settings), channels, settings, dead_letter, preferences,
                            clock=clock)
    contacts = AdminContactService(store, AdminContactRepository(store), service, settings, clock=clock)
    return Notify(store, repo, service, PreferenceService(preferences, clock=clock), contacts)


def consumers(notify: Notify, dead_letter: DeadLetterSink, settings: Settings) -> dict[str, InboxConsumer]:
    """Every topic notify reads (the catalogue names notify among its consumers), each with its handlers.

    Event types notify has no use for are skipped; types nobody registered (an unknown or newer
    version) go to the topic's DLT, counted — the partition moves on.
    """
    handlers: dict[str, Mapping[type, Handler]] = {
        NOTIFY_REQUESTS.name: {ev.NotificationRequested: notify.service.on_request},
        LIFECYCLE_EVENTS.name: {lev.AccountCreated: notify.service.on_account_created,
                                lev.AccountPurged: notify.service.on_account_purged},
    }
    return {topic.name: InboxConsumer(NAME, notify.store, handlers.get(topic.name, {}), dead_letter, settings)
            for topic in CATALOGUE if NAME in topic.consumers}


def worker(settings: Settings, store: Store, dead_letter: DeadLetterSink) -> WorkerPlan:
    """The worker: one delivery per request event (every topic batched), and the mail and SMS dispatcher."""
    notify = bootstrap(settings, store, dead_letter)
    declared = consumers(notify, dead_letter, settings)

    async def dispatcher() -> None:
        await notify.start()
        await notify.service.run_dispatcher(asyncio.Event())

    return WorkerPlan(declared, tasks=[dispatcher], batches=dict.fromkeys(declared, BATCH),
                      batch_within_s=BATCH_WITHIN_S)
