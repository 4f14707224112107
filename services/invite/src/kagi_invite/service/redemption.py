"""The invitee's redemption (招待コードで利用者登録) and the owner's user list (利用者一覧), the two use cases of
invite that need lifecycle's accounts.

Redemption is reserve → account → complete: invite holds the key for a short time, lifecycle creates the account,
checks the login or finds the account of a verified external ID, and invite makes the co-user. Any failure in
between releases the key at once; if this process dies in between, the reservation runs out and the key is
pending again, so nothing is ever left half done. A wrong password on an existing account counts against the key.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

import msgspec

from kagi_invite.domain.invitations import AccountRef, AccountType, CoUser, LoginRefused
from kagi_invite.service.invitations import InvitationService
from kagi_invite.service.ports import Accounts
from kagi_shared.problems import FieldError, Problem
from kagi_shared.service_api import Caller

NEW_ACCOUNT_ROLES = ["viewer"]
AccountChoice = Literal["new", "existing", "external"]


class Redemption(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    key: str
    account: AccountChoice
    """``new``: an email-ID account on the confirmed address; ``existing``: log in to an account;
    ``external``: the account of a verified external ID (provider, subject), made for the invitee if none."""
    password: str = ""
    login_id: str | None = None
    provider: str | None = None
    subject: str | None = None
    client_ip: str | None = None


class Redeemed(msgspec.Struct, frozen=True, kw_only=True):
    co_user: CoUser
    new_account: bool


class ListedUser(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    login_id: str
    email: str
    owner: bool
    representative: bool
    account_type: AccountType
    external_ids: list[str]
    """SNS連携の状況: the providers the person's ID is linked with now (lifecycle keeps the links)."""
    registered_at: datetime


def _invalid(field: str, reason: str) -> Problem:
    return Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=[FieldError(field, reason)])


def _shape_problem(ask: Redemption) -> Problem | None:
    """What the chosen way of redeeming is missing (checked before the key is touched)."""
    if ask.account == "external":
        if not ask.provider or not ask.subject:
            return _invalid("provider", "外部サービスのIDを確認できませんでした。")
        return None
    if ask.account == "existing" and not ask.login_id:
        return _invalid("loginId", "ログインIDを入力してください。")
    if not ask.password:
        return _invalid("password", "パスワードを入力してください。")
    return None


class RedemptionService:
    def __init__(self, invitations: InvitationService, accounts: Accounts) -> None:
        self.invitations = invitations
        self.accounts = accounts

    async def redeem(self, ask: Redemption, correlation_id: str | None = None) -> Redeemed:
        if problem := _shape_problem(ask):
            raise problem
        held = await self.invitations.reserve(ask.token, ask.key, ask.client_ip, correlation_id)
        reservation = held.reservation_id
        released = False
        try:
            try:
                account = await self._account(ask, held.email, correlation_id)
            except LoginRefused as refused:
                # Counted against the key (five void it): release answers invitation.login_failed or key_voided.
                released = True
                await self.invitations.release(reservation, failed_login=True, correlation_id=correlation_id)
                raise refused.problem from None
            co_user = await self.invitations.complete(
                reservation, account.account_id, account.login_id, account.email, account.new_account,
                correlation_id, account_type="external_id" if ask.account == "external" else "email_id")
        except BaseException:  # a cancelled call too: the key is given back rather than held until it lapses
            if not released:
                await self._release_quietly(reservation, correlation_id)
            raise
        return Redeemed(co_user=co_user, new_account=account.new_account)

    async def _account(self, ask: Redemption, email: str, correlation_id: str | None) -> AccountRef:
        if ask.account == "new":
            return await self.accounts.create_account(email, ask.password, email, NEW_ACCOUNT_ROLES, correlation_id)
        if ask.account == "external":
            assert ask.provider and ask.subject
            return await self.accounts.external_account(ask.provider, ask.subject, email, NEW_ACCOUNT_ROLES,
                                                        correlation_id)
        return await self.accounts.check_login(ask.login_id or "", ask.password, correlation_id)

    async def _release_quietly(self, reservation: str, correlation_id: str | None) -> None:
        """Best effort: if this fails too, the reservation runs out on its own."""
        try:
            await asyncio.shield(self.invitations.release(reservation, failed_login=False,
                                                          correlation_id=correlation_id))
        except Exception:  # noqa: S110 - the hold lapses by itself; the invitee gets the first failure
            pass

    # -- 利用者一覧 ------------------------------------------------------------------------------------------------
    async def user_list(self, caller: Caller, correlation_id: str | None = None) -> list[ListedUser]:
        """The owner first, then the co-users in the order they joined, each with their SNS links."""
        household = await self.invitations.household(caller)
        owner = await self.accounts.account(caller.account_id, correlation_id)
        listed = [ListedUser(account_id=owner.account_id, login_id=owner.login_id, email=owner.email, owner=True,
                             representative=household.representative_account_id == owner.account_id,
                             account_type="email_id", external_ids=[], registered_at=owner.issued_at)]
        listed += [ListedUser(account_id=c.account_id, login_id=c.login_id, email=c.email, owner=False,
                              representative=household.representative_account_id == c.account_id,
                              account_type=c.account_type, external_ids=c.external_ids, registered_at=c.added_at)
                   for c in household.co_users]
        linked = await asyncio.gather(*(self.accounts.linked_providers(u.account_id, correlation_id)
                                        for u in listed))
        return [msgspec.structs.replace(u, external_ids=sorted({*u.external_ids, *providers}))
                for u, providers in zip(listed, linked, strict=True)]
