"""Composition root of the invite service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kagi_invite.adapters.claims import ClaimRepository
from kagi_invite.adapters.invitations import InvitationRepository
from kagi_invite.adapters.lifecycle import LifecycleAccounts
from kagi_invite.adapters.locations import LocationRepository
from kagi_invite.adapters.repository import StepUpRepository
from kagi_invite.domain.claims import ClaimPolicy
from kagi_invite.domain.invitations import InvitationPolicy
from kagi_invite.domain.locations import ViewerKeyPolicy
from kagi_invite.domain.step_up import StepUpPolicy
from kagi_invite.service.claims import ClaimService
from kagi_invite.service.invitations import InvitationService
from kagi_invite.service.locations import LocationService
from kagi_invite.service.ports import Accounts
from kagi_invite.service.redemption import RedemptionService
from kagi_invite.service.step_up import StepUpService
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import invite as iev
from kagi_shared.events import lifecycle as lev
from kagi_shared.events.envelope import Envelope
from kagi_shared.inbox import DeadLetterSink, InboxConsumer
from kagi_shared.jobs import WorkerPlan
from kagi_shared.mongo import ServiceRoot, Store, Tx
from kagi_shared.settings import Settings
from kagi_shared.topics import CONTRACTS_UPSERTED, LIFECYCLE_EVENTS

NAME = "invite"


@dataclass
class Invite(ServiceRoot):
    step_ups: StepUpRepository
    step_up: StepUpService
    invitations_repo: InvitationRepository
    invitations: InvitationService
    locations_repo: LocationRepository
    locations: LocationService
    claims_repo: ClaimRepository
    claims: ClaimService
    redemption: RedemptionService
    accounts: Accounts

    async def start(self) -> None:
        await self.store.ensure_indexes(self.step_ups, self.invitations_repo, self.locations_repo, self.claims_repo)

    async def close(self) -> None:
        if isinstance(self.accounts, LifecycleAccounts):
            await self.accounts.close()
        await super().close()


def step_up_policy(settings: Settings) -> StepUpPolicy:
    security = settings.security
    return StepUpPolicy(code_ttl_s=security.step_up_code_ttl_s, max_attempts=security.step_up_max_attempts,
                        window_s=security.step_up_valid_s)


def invitation_policy(settings: Settings) -> InvitationPolicy:
    invite = settings.invite
    return InvitationPolicy(key_ttl_s=invite.key_ttl_s, key_max_attempts=invite.key_max_attempts,
                            link_ttl_s=invite.link_ttl_s, link_max_wrong_keys=invite.link_max_wrong_keys,
                            reservation_ttl_s=invite.reservation_ttl_s)


def claim_policy(settings: Settings) -> ClaimPolicy:
    invite = settings.invite
    return ClaimPolicy(recommended_max=invite.claim_recommended_max, sms_code_ttl_s=invite.sms_code_ttl_s,
                       sms_max_attempts=invite.sms_max_attempts)


def bootstrap(settings: Settings, store: Store | None = None, accounts: Accounts | None = None,
              clock: Clock = utc_now) -> Invite:
    """``accounts``: lifecycle's accounts; by default its internal API at ``KAGI_PORTS_LIFECYCLE`` /
    ``KAGI_LIFECYCLE_URL`` (redemption and the user list call it)."""
    store = store or Store.of(settings, NAME)
    repo = StepUpRepository(store)
    invitations_repo = InvitationRepository(store)
    invitations = InvitationService(store, invitations_repo, repo, settings, invitation_policy(settings),
                                    step_up_policy(settings), clock=clock)
    locations_repo = LocationRepository(store)
    claims_repo = ClaimRepository(store)
    accounts = accounts or LifecycleAccounts(settings)
    return Invite(store, repo, StepUpService(store, repo, settings, step_up_policy(settings), clock=clock),
                  invitations_repo, invitations, locations_repo,
                  LocationService(store, locations_repo, invitations, settings,
                                  ViewerKeyPolicy(key_ttl_s=settings.invite.viewer_key_ttl_s), clock=clock),
                  claims_repo, ClaimService(store, claims_repo, invitations, invitations_repo, locations_repo,
                                            settings, claim_policy(settings), clock=clock),
                  RedemptionService(invitations, accounts), accounts)


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


def worker(settings: Settings, store: Store, dead_letter: DeadLetterSink) -> WorkerPlan:
    """The worker: contract data from ``contracts.upserted`` and lifecycle's purges; the indexes at start."""
    invite = bootstrap(settings, store)
    return WorkerPlan(consumers(invite, dead_letter, settings), tasks=[invite.start])
