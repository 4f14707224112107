"""Composition root of the invite service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kagi_invite.adapters.claims import ClaimRepository
from kagi_invite.adapters.invitations import InvitationRepository
from kagi_invite.adapters.locations import LocationRepository
from kagi_invite.adapters.repository import StepUpRepository
from kagi_invite.service.claims import ClaimService
from kagi_invite.service.invitations import InvitationService
from kagi_invite.service.locations import LocationService
from kagi_invite.service.step_up import StepUpService
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import invite as iev
from kagi_shared.events import lifecycle as lev
from kagi_shared.events.envelope import Envelope
from kagi_shared.inbox import DeadLetterSink, InboxConsumer
from kagi_shared.mongo import Store, Tx, database_name, make_client
from kagi_shared.settings import Settings
from kagi_shared.topics import CONTRACTS_UPSERTED, LIFECYCLE_EVENTS

NAME = "invite"


@dataclass
class Invite:
    store: Store
    step_ups: StepUpRepository
    step_up: StepUpService
    invitations_repo: InvitationRepository
    invitations: InvitationService
    locations_repo: LocationRepository
    locations: LocationService
    claims_repo: ClaimRepository
    claims: ClaimService

    async def start(self) -> None:
        await self.step_ups.ensure_indexes()
        await self.invitations_repo.ensure_indexes()
        await self.locations_repo.ensure_indexes()
        await self.claims_repo.ensure_indexes()
        await self.store.ensure_outbox_indexes()

    async def close(self) -> None:
        await self.store.client.close()


def bootstrap(settings: Settings, store: Store | None = None, clock: Clock = utc_now) -> Invite:
    store = store or Store(make_client(settings), database_name(settings, NAME))
    repo = StepUpRepository(store)
    invitations_repo = InvitationRepository(store)
    invitations = InvitationService(store, invitations_repo, repo, settings, clock=clock)
    locations_repo = LocationRepository(store)
    claims_repo = ClaimRepository(store)
    return Invite(store, repo, StepUpService(store, repo, settings, clock=clock), invitations_repo, invitations,
                  locations_repo, LocationService(store, locations_repo, invitations, settings, clock=clock),
                  claims_repo, ClaimService(store, claims_repo, invitations, invitations_repo, locations_repo,
                                            settings, clock=clock))


def contracts(invite: Invite, dead_letter: DeadLetterSink, settings: Settings) -> InboxConsumer:
    async def on_contract(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, iev.ContractUpserted)
        await invite.locations.ingest(tx, event)

    async def on_water_contract(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, iev.WaterContractUpserted)
        await invite.claims.ingest(tx, event)

    return InboxConsumer("invite.contracts", invite.store, {iev.ContractUpserted: on_contract,
                                                            iev.WaterContractUpserted: on_water_contract},
                         dead_letter, settings)


def purges(invite: Invite, dead_letter: DeadLetterSink, settings: Settings) -> InboxConsumer:
    async def on_purged(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, lev.AccountPurged)
        await invite.invitations_repo.remove_account(tx, event.account_id)
        await invite.locations.forget_account(tx, event.account_id)
        await invite.claims_repo.remove_all(tx, event.account_id)

    return InboxConsumer("invite.purges", invite.store, {lev.AccountPurged: on_purged}, dead_letter, settings)


def consumers(invite: Invite, dead_letter: DeadLetterSink, settings: Settings) -> dict[str, InboxConsumer]:
    """The worker's consumers by topic: contract data from outside, lifecycle's purges."""
    return {CONTRACTS_UPSERTED.name: contracts(invite, dead_letter, settings),
            LIFECYCLE_EVENTS.name: purges(invite, dead_letter, settings)}
