"""External IDs (SNS連携): which external identity (provider + subject) belongs to which account, and logging in
with one. The gateway verifies the provider's ID token; lifecycle only ever sees a verified (provider, subject).

An unknown external identity never creates an account on a plain login: it is refused with ``federation.not_linked``
and the person is offered registration or linking from a signed-in account. The one way an account is made from
one is an invitee redeeming an invitation key with it (seed 000: 他サービスのIDをご利用になる場合), on the address the
invitation link has confirmed (``account_for_invitee``).
"""

from __future__ import annotations

import secrets

from kagi_lifecycle.adapters.external_links import ExternalLinkRepository
from kagi_lifecycle.domain.accounts import Account, AccountExists, login_id_problem
from kagi_lifecycle.domain.federation import ExternalLink, LinkedElsewhere
from kagi_lifecycle.service.accounts import AccountService
from kagi_shared.events import lifecycle as ev
from kagi_shared.mongo import Tx
from kagi_shared.problems import FieldError, Problem

NOT_LINKED = Problem(404, "federation.not_linked",
                     "このIDはKagiのIDと連携されていません。新規登録するか、ログイン後に「SNS連携」から連携してください。")
PRIVILEGED = Problem(403, "federation.second_factor_required",
                     "このIDは外部サービスのIDではログインできません。IDとパスワードでログインしてください。")
INVITEE_ROLES = frozenset({"viewer"})
EXISTS = Problem(409, "account.exists", "この ID は既に登録されています。",
                 errors=[FieldError("loginId", "既に使用されています。")])
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

    async def account_for_invitee(self, provider: str, subject: str, login_id: str, email: str, roles: list[str],
                                  correlation_id: str | None = None) -> tuple[Account, bool]:
        """The account an invitee redeems a key with, having signed in with an external ID: the linked one (this
        is an external login, counted as one), or else a new account on the confirmed address, linked to the ID
        in the same transaction. Its password is random and never shown: it signs in with its external ID, or sets
        a password through the reset (パスワードをお忘れの方)."""
        if await self.links.owner(provider, subject) is not None:
            return await self.login(provider, subject, correlation_id), False
        errors = [FieldError("loginId", problem)] if (problem := login_id_problem(login_id)) else []
        if not roles or set(roles) - INVITEE_ROLES:
            # An account made from an external ID must never hold a role that needs the second factor.
            errors.append(FieldError("roles", f"招待された方の ID に付けられないロールです: {', '.join(roles)}"))
        if errors:
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=errors)
        service = self.lifecycle
        now = service.clock()
        account = service.new_account(login_id, email, await service.passwords.hash(secrets.token_urlsafe(32)),
                                      roles, now)
        link = ExternalLink(provider=provider, subject=subject, account_id=account.id, linked_at=now)

        async def work(tx: Tx) -> None:
            await service.accounts.add(tx, account)
            await self.links.add(tx, link)
            service.publish(tx, ev.AccountCreated(account_id=account.id, login_id=account.login_id,
                                                  email=account.email, roles=account.roles, issued_at=now),
                            account.id, correlation_id)

        try:
            await service.store.transaction(work)
        except AccountExists:
            raise EXISTS from None
        except LinkedElsewhere:  # the same ID was just linked by another request
            raise TAKEN from None
        return account, True
