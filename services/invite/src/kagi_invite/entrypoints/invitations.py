"""Invite's internal API for invitation keys, the invitee's two-phase redemption and the user list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from litestar import Request, delete, get, post, put
from litestar.params import FromPath, JSONBody

from kagi_invite.domain.invitations import CoUser, InvitationKey, shown_status
from kagi_shared.contracts.invite import (
    CompleteIn,
    HouseholdMemberOut,
    HouseholdMembershipsOut,
    HouseholdOut,
    InvitationRequestOut,
    IssuedKeyOut,
    KeyOut,
    KeysOut,
    LinkOut,
    LinkRequestIn,
    LinkTokenIn,
    ReleaseIn,
    RepresentativeIn,
    ReservationOut,
    ReserveIn,
)
from kagi_shared.jst import jp_deadline
from kagi_shared.service_api import caller_of, correlation_of, require_role
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
        caller = caller_of(request)
        require_role(caller, "owner")
        return caller

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

    @post("/internal/invitations/reservations", status_code=201)
    async def reserve(data: JSONBody[ReserveIn], request: Request[Any, Any, Any]) -> ReservationOut:
        held = await app().invitations.reserve(data.token, data.key, data.client_ip, correlation_of(request))
        return ReservationOut(reservation_id=held.reservation_id, email=held.email, owner_id=held.owner_id,
                              reserved_until=held.reserved_until)

    @post("/internal/invitations/reservations/{reservation_id:str}/release", status_code=204)
    async def release(reservation_id: FromPath[str], data: JSONBody[ReleaseIn],
                      request: Request[Any, Any, Any]) -> None:
        await app().invitations.release(reservation_id, data.failed_login, correlation_of(request))

    @post("/internal/invitations/reservations/{reservation_id:str}/complete", status_code=201)
    async def complete(reservation_id: FromPath[str], data: JSONBody[CompleteIn],
                       request: Request[Any, Any, Any]) -> HouseholdMemberOut:
        co_user = await app().invitations.complete(reservation_id, data.account_id, data.login_id, data.email,
                                                   data.new_account, correlation_of(request))
        return co_user_out(co_user)

    @get("/internal/users")
    async def household(request: Request[Any, Any, Any]) -> HouseholdOut:
        found = await app().invitations.household(owner(request))
        return HouseholdOut(owner_id=found.owner_id, representative_account_id=found.representative_account_id,
                            co_users=[co_user_out(c) for c in found.co_users])

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

    return [issue_key, list_keys, revoke_key, request_link, check_link, reserve, release, complete, household,
            representative, remove, memberships]
