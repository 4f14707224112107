"""Composition root of the permissions service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kagi_permissions.adapters.repository import Repository
from kagi_permissions.domain.calendar import BusinessCalendar, calendar_from
from kagi_permissions.domain.requests import JujuPolicy
from kagi_permissions.service.companies import CompanyService
from kagi_permissions.service.requests import RequestService
from kagi_permissions.service.review import ReviewService
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import lifecycle as lev
from kagi_shared.events import permissions as pev
from kagi_shared.events.envelope import Envelope
from kagi_shared.inbox import DeadLetterSink, InboxConsumer
from kagi_shared.jobs import Every, Job, WorkerPlan
from kagi_shared.logging import get_logger
from kagi_shared.mongo import ServiceRoot, Store, Tx
from kagi_shared.settings import Settings
from kagi_shared.topics import LIFECYCLE_EVENTS, PERMISSIONS_ACKS

NAME = "permissions"
log = get_logger(__name__)
# Acks come in bursts after every batch run (one per user and system); taken up to this many per transaction.
BATCHED_TOPICS = {PERMISSIONS_ACKS.name: 200}


@dataclass
class Permissions(ServiceRoot):
    repo: Repository
    calendar: BusinessCalendar
    requests: RequestService
    companies: CompanyService
    reviews: ReviewService

    async def start(self) -> None:
        await self.store.ensure_indexes(self.repo)


def bootstrap(settings: Settings, store: Store | None = None, clock: Clock = utc_now) -> Permissions:
    store = store or Store.of(settings, NAME)
    repo = Repository(store)
    calendar = calendar_from(settings)
    requests = RequestService(store, repo, settings, calendar,
                              JujuPolicy(max_users=settings.permissions.juju_max_users), clock=clock)
    return Permissions(store, repo, calendar, requests, CompanyService(store, repo, requests, clock=clock),
                       ReviewService(store, repo, requests, clock=clock))


def consumers(permissions: Permissions, dead_letter: DeadLetterSink, settings: Settings) -> dict[str, InboxConsumer]:
    """The worker's consumers by topic: target-system acks, and lifecycle's logins and purges."""
    async def on_ack(envelope: Envelope, event: Any, tx: Tx) -> None:
        await permissions.requests.handle_ack(envelope.id, event, tx)

    async def on_acks(events: list[tuple[Envelope, Any]], tx: Tx) -> None:
        await permissions.requests.handle_acks([(envelope.id, event) for envelope, event in events], tx)

    async def on_account_created(envelope: Envelope, event: Any, tx: Tx) -> None:
        await permissions.repo.remember_account(tx, event.account_id, event.login_id)

    async def on_logged_in(envelope: Envelope, event: Any, tx: Tx) -> None:
        await permissions.repo.record_login(tx, event.account_id, event.at)

    async def on_purged(envelope: Envelope, event: Any, tx: Tx) -> None:
        await permissions.requests.purged(tx, event.login_id, event.at)

    return {
        PERMISSIONS_ACKS.name: InboxConsumer("permissions-acks", permissions.store,
                                             {pev.GrantAcknowledged: on_ack}, dead_letter, settings,
                                             batch_handlers={pev.GrantAcknowledged: on_acks}),
        LIFECYCLE_EVENTS.name: InboxConsumer("permissions-lifecycle", permissions.store, {
            lev.AccountCreated: on_account_created, lev.LoggedIn: on_logged_in, lev.AccountPurged: on_purged,
        }, dead_letter, settings),
    }


def jobs(permissions: Permissions, settings: Settings) -> list[Job]:
    """The batch runs by itself on its date (and catches up after downtime); overdue acks raise reminders."""
    async def tick() -> None:
        result, reminded = await permissions.requests.tick()
        if result.requests:
            log.info("batch.ran", batch_date=str(result.batch_date), requests=result.requests,
                     commands=result.commands)
        if reminded:
            log.warning("acks.overdue", reminded=reminded)

    return [Every("scheduler", settings.permissions.scheduler_interval_s, tick, setup=permissions.start)]


def worker(settings: Settings, store: Store, dead_letter: DeadLetterSink) -> WorkerPlan:
    """The worker: acks (batched) and lifecycle's events, the scheduler (which makes the indexes first)."""
    permissions = bootstrap(settings, store)
    return WorkerPlan(consumers(permissions, dead_letter, settings), jobs=jobs(permissions, settings),
                      batches=BATCHED_TOPICS)
