"""Invite's internal API for invitation keys, the invitee's redemption (one call: invite runs the two phases with
lifecycle) and the user list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, delete, get, post, put
from litestar.params import FromPath, JSONBody

from kagi_invite.domain.invitations import CoUser, InvitationKey, shown_status
from kagi_invite.service.redemption import Redemption
from kagi_shared.contracts.invite import (
    HouseholdMemberOut,
    HouseholdMembershipsOut,
    InvitationRequestOut,
    IssuedKeyOut,
    KeyOut,
    KeysOut,
    LinkOut,
    LinkRequestIn,
    LinkTokenIn,
    RedeemedOut,
    RedeemIn,
    RepresentativeIn,
    UserOut,
    UsersOut,
)
from kagi_shared.jst import jp_deadline
from kagi_shared.service_api import caller_as, caller_of, correlation_of
from kagi_shared.settings import Settings

if TYPE_CHECKING:
    from kagi_invite.bootstrap import Invite


def key_out(key: InvitationKey, now: datetime) -> KeyOut:
    return KeyOut(key_id=key.id, status=shown_status(key, now), issued_at=key.issued_at, expires_at=key.expires_at,
                  expires_at_text=jp_deadline(key.expires_at), redeemed_at=key.redeemed_at,
                  redeemed_by=key.redeemed_login_id)


def co_user_out(co_user: CoUser) -> HouseholdMemberOut:
    return HouseholdMemberOut(owner_id=co_user.owner_id, owner_login_id=co_user.owner_login_id,
                              account_id=co_user.account_id, login_id=co_user.login_id, email=co_user.email,
                              account_type=co_user.account_type, external_ids=co_user.external_ids,
                              added_at=co_user.added_at)


def login_url(settings: Settings) -> str:
    return f"{settings.brand.portal_url.rstrip('/')}/login"


def invitation_handlers(app: Callable[[], Invite], settings: Settings) -> list[Any]:
    def owner(request: Request[Any, Any, Any]) -> Any:
        return caller_as(request, "owner")

    @post("/internal/invitations", status_code=201)
    async def issue_key(request: Request[Any, Any, Any]) -> IssuedKeyOut:
        issued = await app().invitations.issue_key(owner(request), correlation_of(request))
        return IssuedKeyOut(key_id=issued.record.id, key=issued.key, expires_at=issued.record.expires_at,
                            expires_at_text=jp_deadline(issued.record.expires_at), login_url=login_url(settings))

    @get("/internal/invitations")
    async def list_keys(request: Request[Any, Any, Any]) -> KeysOut:
        now = datetime.now(UTC)
        return KeysOut(items=[key_out(k, now) for k in await app().invitations.list_keys(owner(request))])

    @delete("/internal/invitations/{key_id:str}", status_code=200)
    async def revoke_key(key_id: FromPath[str], request: Request[Any, Any, Any]) -> KeyOut:
        key = await app().invitations.revoke_key(owner(request), key_id, correlation_of(request))
        return key_out(key, datetime.now(UTC))

    @post("/internal/invitations/requests", status_code=202)
    async def request_link(data: JSONBody[LinkRequestIn], request: Request[Any, Any, Any]) -> InvitationRequestOut:
        link = await app().invitations.request_link(data.email, data.client_ip, correlation_of(request))
        return InvitationRequestOut(sent_to=link.email, link_expires_at=link.expires_at)

    @post("/internal/invitations/links/check", status_code=200)
    async def check_link(data: JSONBody[LinkTokenIn]) -> LinkOut:
        link = await app().invitations.check_link(data.token, data.client_ip)
        return LinkOut(email=link.email, expires_at=link.expires_at)

    @post("/internal/invitations/redeem", status_code=201)
    async def redeem(data: JSONBody[RedeemIn], request: Request[Any, Any, Any]) -> RedeemedOut:
        done = await app().redemption.redeem(msgspec.convert(msgspec.structs.asdict(data), Redemption),
                                             correlation_of(request))
        return RedeemedOut(account_id=done.co_user.account_id, login_id=done.co_user.login_id,
                           new_account=done.new_account, owner_login_id=done.co_user.owner_login_id,
                           login_url=login_url(settings))

    @get("/internal/users")
    async def users(request: Request[Any, Any, Any]) -> UsersOut:
        listed = await app().redemption.user_list(owner(request), correlation_of(request))
        return UsersOut(items=[UserOut(**msgspec.structs.asdict(u)) for u in listed])

    @put("/internal/users/representative", status_code=204)
    async def representative(data: JSONBody[RepresentativeIn], request: Request[Any, Any, Any]) -> None:
        await app().invitations.set_representative(owner(request), data.account_id, correlation_of(request))

    @delete("/internal/users/{account_id:str}", status_code=204)
    async def remove(account_id: FromPath[str], request: Request[Any, Any, Any]) -> None:
        await app().invitations.remove_co_user(owner(request), account_id, correlation_of(request))

    @get("/internal/memberships")
    async def memberships(request: Request[Any, Any, Any]) -> HouseholdMembershipsOut:
        found = await app().invitations.memberships(caller_of(request))
        return HouseholdMembershipsOut(items=[co_user_out(c) for c in found])

    return [issue_key, list_keys, revoke_key, request_link, check_link, redeem, users, representative, remove,
            memberships]
