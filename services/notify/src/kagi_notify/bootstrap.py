"""Composition root of the notify service."""

from __future__ import annotations

from dataclasses import dataclass

from kagi_notify.adapters.mailer import SmtpMailer, SmtpTarget
from kagi_notify.adapters.repository import DeliveryRepository
from kagi_notify.domain.templates import Catalogue
from kagi_notify.service.deliveries import NotifyService
from kagi_shared.inbox import DeadLetterSink
from kagi_shared.mongo import Store, database_name, make_client
from kagi_shared.settings import Settings

NAME = "notify"


@dataclass
class Notify:
    store: Store
    deliveries: DeliveryRepository
    service: NotifyService

    async def start(self) -> None:
        await self.deliveries.ensure_indexes()
        await self.store.ensure_outbox_indexes()

    async def close(self) -> None:
        await self.store.client.close()


def load_catalogue(settings: Settings) -> Catalogue:
    return Catalogue.load(settings.brand.name, settings.brand.portal_url)


def bootstrap(settings: Settings, store: Store | None = None, dead_letter: DeadLetterSink | None = None) -> Notify:
    store = store or Store(make_client(settings), database_name(settings, NAME))
    repo = DeliveryRepository(store)
    mailer = SmtpMailer(SmtpTarget.parse(settings.smtp_url), settings.notify.smtp_timeout_s)
    service = NotifyService(store, repo, load_catalogue(settings), mailer, settings, dead_letter)
    return Notify(store, repo, service)
