"""Composition root of the lifecycle service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from kagi_lifecycle.adapters.enrolments import EnrolmentRepository
from kagi_lifecycle.adapters.external_links import ExternalLinkRepository
from kagi_lifecycle.adapters.oidc_repository import OidcRepository
from kagi_lifecycle.adapters.password_resets import ResetLinkRepository
from kagi_lifecycle.adapters.passwords import Passwords
from kagi_lifecycle.adapters.rate_limit import RateLimiter
from kagi_lifecycle.adapters.refresh_tokens import RefreshTokenRepository
from kagi_lifecycle.adapters.registrations import RegistrationRepository
from kagi_lifecycle.adapters.repository import AccountRepository
from kagi_lifecycle.adapters.unlock_requests import UnlockRequestRepository
from kagi_lifecycle.domain.accounts import LockoutPolicy
from kagi_lifecycle.domain.enrolment import EnrolmentPolicy
from kagi_lifecycle.domain.ladder import LadderDays
from kagi_lifecycle.domain.oidc import OidcPolicy
from kagi_lifecycle.domain.password_policy import PasswordPolicy
from kagi_lifecycle.domain.sessions import SessionPolicy
from kagi_lifecycle.service.accounts import AccountService
from kagi_lifecycle.service.credentials import CredentialService
from kagi_lifecycle.service.enrolment import EnrolmentService
from kagi_lifecycle.service.federation import FederationService
from kagi_lifecycle.service.oidc import OidcService
from kagi_lifecycle.service.registration import RegistrationService
from kagi_lifecycle.service.secret_question import SecretQuestionService
from kagi_lifecycle.service.sessions import SessionService
from kagi_lifecycle.service.sweep import SweepService
from kagi_lifecycle.service.totp import TotpService
from kagi_lifecycle.service.unlock import UnlockService
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import invite as inv
from kagi_shared.events import lifecycle as ev
from kagi_shared.events import permissions as pev
from kagi_shared.events.envelope import Envelope
from kagi_shared.inbox import DeadLetterSink, Handler, InboxConsumer
from kagi_shared.jobs import Crontab, Job, WorkerPlan
from kagi_shared.logging import get_logger
from kagi_shared.mongo import ServiceRoot, Store, Tx
from kagi_shared.settings import Settings
from kagi_shared.topics import AUTH_LOGINS, INVITE_EVENTS, PERMISSIONS_EVENTS

NAME = "lifecycle"

log = get_logger(__name__)


@dataclass
class Lifecycle(ServiceRoot):
    accounts: AccountRepository
    service: AccountService
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
        await self.store.ensure_indexes(self.accounts, self.credentials.resets, self.unlocks.requests, self.limiter,
                                        self.sessions.tokens, self.registrations.links, self.enrolments.enrolments,
                                        self.oidc.repo, self.federation.links)
        await self.sweeps.backfill()


def lockout_policy(settings: Settings) -> LockoutPolicy:
    return LockoutPolicy(threshold=settings.security.login_lockout_threshold,
                         privileged_lock_s=settings.security.privileged_lock_s)


def ladder_days(settings: Settings) -> LadderDays:
    """SPEC §4 inactivity ladder: warnings at 120 and 150 days, lock at 180, purge at 210 (settings)."""
    lc = settings.lifecycle
    return LadderDays(warning1=lc.warning1_days, warning2=lc.warning2_days, lock=lc.lock_days, purge=lc.purge_days)


def enrolment_policy(settings: Settings) -> EnrolmentPolicy:
    lc = settings.lifecycle
    return EnrolmentPolicy(ttl_s=lc.enrolment_ttl_s, max_otp_failures=lc.enrolment_max_otp_failures)


def password_policy(settings: Settings) -> PasswordPolicy:
    return PasswordPolicy(profile=settings.lifecycle.password_profile,
                          max_age_days=settings.lifecycle.password_max_age_days)


def bootstrap(settings: Settings, store: Store | None = None, clock: Clock = utc_now) -> Lifecycle:
    store = store or Store.of(settings, NAME)
    accounts = AccountRepository(store)
    limiter = RateLimiter(store)
    service = AccountService(store, accounts, Passwords(settings.security), settings, clock,
                             lockout=lockout_policy(settings), password_rules=password_policy(settings),
                             ladder_days=ladder_days(settings))
    credentials = CredentialService(service, limiter, ResetLinkRepository(store))
    return Lifecycle(store, accounts, service, SweepService(service, accounts), credentials,
                     UnlockService(service, limiter, UnlockRequestRepository(store)), limiter,
                     SessionService(service, RefreshTokenRepository(store),
                                    SessionPolicy(refresh_ttl_s=settings.security.refresh_token_ttl_s,
                                                  absolute_ttl_s=settings.security.refresh_absolute_ttl_s)),
                     SecretQuestionService(credentials),
                     RegistrationService(service, limiter, RegistrationRepository(store)),
                     TotpService(service),
                     EnrolmentService(service, EnrolmentRepository(store), enrolment_policy(settings)),
                     OidcService(OidcRepository(store), settings, clock,
                                 OidcPolicy(token_ttl_s=settings.security.access_token_ttl_s)),
                     FederationService(service, ExternalLinkRepository(store)))



def consumers(lifecycle: Lifecycle, dead_letter: DeadLetterSink, settings: Settings) -> dict[str, InboxConsumer]:
    """The worker's consumers by topic: external logins, withdrawals (退会), and permission changes (a first
    grant enrols a B2B ID, losing every permission disables it)."""
    async def on_login(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, ev.ExternalLoginReported)
        await lifecycle.service.external_login(tx, event, envelope.correlationid)

    async def on_withdrawn(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, inv.Withdrawn)
        await lifecycle.registrations.withdraw(tx, event.account_id, envelope.correlationid)

    async def on_access_changed(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, pev.AccessChanged)
        await lifecycle.enrolments.on_access_changed(tx, event, envelope.correlationid)

    def consumer(name: str, event_type: type, handler: Handler) -> InboxConsumer:
        return InboxConsumer(name, lifecycle.store, {event_type: handler}, dead_letter, settings)

    return {
        AUTH_LOGINS.name: consumer("lifecycle.external_logins", ev.ExternalLoginReported, on_login),
        INVITE_EVENTS.name: consumer("lifecycle.withdrawals", inv.Withdrawn, on_withdrawn),
        PERMISSIONS_EVENTS.name: consumer("lifecycle.access_changes", pev.AccessChanged, on_access_changed),
    }


def jobs(lifecycle: Lifecycle, settings: Settings) -> list[Job]:
    """The daily inactivity sweep at the configured crontab and time zone.

    Every worker may run it: each account is re-read and changed in its own transaction, so two
    sweeps at once apply each stage once (no dependence on faust's leader election).
    """
    lc = settings.lifecycle

    async def inactivity_sweep() -> None:
        await lifecycle.start()
        result = await lifecycle.sweeps.sweep(lifecycle.service.clock())
        log.info("lifecycle.scheduled_sweep", **result.as_json())

    return [Crontab(lc.sweep_cron, ZoneInfo(lc.sweep_timezone), inactivity_sweep)]


def worker(settings: Settings, store: Store, dead_letter: DeadLetterSink) -> WorkerPlan:
    """The worker: its consumers and the daily sweep (which makes the indexes before its first run)."""
    lifecycle = bootstrap(settings, store)
    return WorkerPlan(consumers(lifecycle, dead_letter, settings), jobs=jobs(lifecycle, settings))
