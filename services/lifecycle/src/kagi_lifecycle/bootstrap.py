"""Composition root of the lifecycle service."""

from __future__ import annotations

from dataclasses import dataclass

from kagi_lifecycle.adapters.oidc_repository import OidcRepository
from kagi_lifecycle.adapters.passwords import Passwords
from kagi_lifecycle.adapters.rate_limit import RateLimiter
from kagi_lifecycle.adapters.repository import AccountRepository
from kagi_lifecycle.domain.oidc import OidcPolicy
from kagi_lifecycle.service.credentials import CredentialService
from kagi_lifecycle.service.enrolment import EnrolmentService
from kagi_lifecycle.service.federation import FederationService
from kagi_lifecycle.service.handlers import Clock, LifecycleService, _now
from kagi_lifecycle.service.oidc import OidcService
from kagi_lifecycle.service.registration import RegistrationService
from kagi_lifecycle.service.secret_question import SecretQuestionService
from kagi_lifecycle.service.sessions import SessionService
from kagi_lifecycle.service.sweep import SweepService
from kagi_lifecycle.service.totp import TotpService
from kagi_lifecycle.service.unlock import UnlockService
from kagi_shared.mongo import Store, database_name, make_client
from kagi_shared.settings import Settings

NAME = "lifecycle"


@dataclass
class Lifecycle:
    store: Store
    accounts: AccountRepository
    service: LifecycleService
    sweeps: SweepService
    credentials: CredentialService
    unlocks: UnlockService
    limiter: RateLimiter
    sessions: SessionService
    secret_questions: SecretQuestionService
    registrations: RegistrationService
    totp: TotpService
    enrolments: EnrolmentService
    oidc: OidcService
    federation: FederationService

    async def start(self) -> None:
        await self.accounts.ensure_indexes()
        await self.credentials.ensure_indexes()
        await self.unlocks.ensure_indexes()
        await self.limiter.ensure_indexes()
        await self.sessions.ensure_indexes()
        await self.registrations.ensure_indexes()
        await self.enrolments.ensure_indexes()
        await self.oidc.repo.ensure_indexes()
        await self.federation.ensure_indexes()
        await self.store.ensure_outbox_indexes()
        await self.sweeps.backfill()

    async def close(self) -> None:
        await self.store.client.close()


def bootstrap(settings: Settings, store: Store | None = None, clock: Clock = _now) -> Lifecycle:
    store = store or Store(make_client(settings), database_name(settings, NAME))
    accounts = AccountRepository(store)
    limiter = RateLimiter(store)
    service = LifecycleService(store, accounts, Passwords(settings.security), settings, clock)
    credentials = CredentialService(service, limiter)
    return Lifecycle(store, accounts, service, SweepService(service, accounts), credentials,
                     UnlockService(service, limiter), limiter, SessionService(service),
                     SecretQuestionService(credentials), RegistrationService(service, limiter),
                     TotpService(service), EnrolmentService(service),
                     OidcService(OidcRepository(store), settings, clock,
                                 OidcPolicy(token_ttl_s=settings.security.access_token_ttl_s)),
                     FederationService(service))
