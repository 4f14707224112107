"""External IDs (SNS連携): which external identity (provider + subject) belongs to which account, and logging in
with one. The gateway verifies the provider's ID token; lifecycle only ever sees a verified (provider, subject).

An unknown external identity never creates an account: it is refused with ``federation.not_linked`` and the person
is offered registration or linking from a signed-in account.
"""

from __future__ import annotations

from kagi_lifecycle.adapters.external_links import ExternalLinkRepository
from kagi_lifecycle.domain.accounts import Account
from kagi_lifecycle.domain.federation import ExternalLink, LinkedElsewhere
from kagi_lifecycle.service.accounts import AccountService
from kagi_shared.events import lifecycle as ev
from kagi_shared.mongo import Tx
from kagi_shared.problems import Problem

NOT_LINKED = Problem(404, "federation.not_linked",
                     "このIDはKagiのIDと連携されていません。新規登録するか、ログイン後に「SNS連携」から連携してください。")
PRIVILEGED = Problem(403, "federation.second_factor_required",
                     "このIDは外部サービスのIDではログインできません。IDとパスワードでログインしてください。")
TAKEN = Problem(409, "federation.linked_elsewhere", "このIDはすでに別のKagiのIDと連携されています。")


class FederationService:
    def __init__(self, lifecycle: AccountService, links: ExternalLinkRepository) -> None:
        self.lifecycle = lifecycle
        self.links = links

    async def links_of(self, account_id: str) -> list[ExternalLink]:
        return await self.links.of_account(account_id)

    async def link(self, account_id: str, provider: str, subject: str) -> ExternalLink:
        """One external ID per provider per account, and an external ID on one account only."""
        owner = await self.links.owner(provider, subject)
        if owner is not None and owner != account_id:
            raise TAKEN
        link = ExternalLink(provider=provider, subject=subject, account_id=account_id,
                            linked_at=self.lifecycle.clock())
        try:
            await self.links.put(link)
        except LinkedElsewhere:
            raise TAKEN from None
        return link

    async def unlink(self, account_id: str, provider: str) -> bool:
        return await self.links.remove(account_id, provider)

    async def login(self, provider: str, subject: str, correlation_id: str | None = None) -> Account:
        """A verified external login: the linked account, if active, logs in and its last login moves (the
        inactivity ladder counts it) through the same rule as a login reported on ``auth.logins``."""
        owner = await self.links.owner(provider, subject)
        account = await self.lifecycle.accounts.get(owner) if owner else None
        if account is None or account.status == "purged":
            raise NOT_LINKED
        self.lifecycle.refuse_inactive(account)
        if account.status != "active":
            raise NOT_LINKED
        if self.lifecycle.needs_totp(account):
            # A role that needs the second factor logs in with ID, password and TOTP only; an external ID would
            # skip the factor.
            raise PRIVILEGED
        now = self.lifecycle.clock()
        report = ev.ExternalLoginReported(login_id=account.login_id, at=now, provider=provider)

        async def record(tx: Tx) -> bool:
            return await self.lifecycle.external_login(tx, report, correlation_id)

        await self.lifecycle.store.transaction(record)
        return await self.lifecycle.accounts.get(account.id) or account
