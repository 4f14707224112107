"""Invitations (招待コード / 認証キー): the owner's keys and user list, and the invitee's public flow.

Redemption spans two services, so the gateway runs it as reserve → account → complete: invite
holds the key for a short time, lifecycle creates the account or checks the login, invite makes
the co-user. Any failure in between releases the key at once; if the gateway itself dies, the
reservation runs out and the key is pending again — nothing is left half done.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from kagi_gateway.deps import ANY_USER, PUBLIC, client_ip, current_caller, request_id
from kagi_gateway.schemas import Dto
from kagi_gateway.services import ForwardedProblem, Services
from kagi_shared.contracts import invite
from kagi_shared.contracts.invite import (
    InvitationRequestOut,
    IssuedKeyOut,
    KeyOut,
    KeysOut,
    LinkOut,
    RepresentativeIn,
)
from kagi_shared.jst import to_jst
from kagi_shared.problems import FieldError, Problem
from kagi_shared.settings import get_settings

OWNER = ("owner",)
ACCOUNT_TYPE_LABELS = {"email_id": "メールアドレスID", "external_id": "外部サービスID"}
NEW_ACCOUNT_ROLES = ["viewer"]


class CoUserOut(Dto):
    account_id: str
    login_id: str
    email: str
    owner: bool
    representative: bool
    account_type: str
    account_type_label: str
    external_ids: list[str]
    registered_at: datetime
    registered_at_text: str


class UsersOut(Dto):
    items: list[CoUserOut]


class MembershipOut(Dto):
    owner_id: str
    owner_login_id: str
    added_at: datetime


class MembershipsOut(Dto):
    items: list[MembershipOut]


class InvitationRequestIn(Dto):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]


class LinkCheckIn(Dto):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class RedeemIn(Dto):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    key: Annotated[str, msgspec.Meta(max_length=64)]
    account: Literal["new", "existing"]
    """``new``: a new email-ID account on the confirmed address; ``existing``: log in to an account."""
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    login_id: Annotated[str, msgspec.Meta(min_length=1, max_length=254)] | None = None


class RedeemOut(Dto):
    account_id: str
    login_id: str
    new_account: bool
    owner_login_id: str
    login_url: str


def _registered(moment: datetime) -> str:
    return f"{to_jst(moment):%Y/%m/%d %H:%M:%S}"


class InvitationController(Controller):
    path = "/api/v1"
    tags = ("invitations",)

    # -- the owner -------------------------------------------------------------------------------
    @post("/me/invitations", opt={"roles": OWNER}, status_code=201,
          summary="Issue an invitation key (needs a fresh step-up)")
    async def issue(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> IssuedKeyOut:
        return await services.invite.issue_key(current_caller(request), rid=request_id(request))

    @get("/me/invitations", opt={"roles": OWNER}, summary="The owner's keys: pending, redeemed, expired, revoked")
    async def keys(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> KeysOut:
        return await services.invite.keys(current_caller(request), rid=request_id(request))

    @delete("/me/invitations/{key_id:str}", opt={"roles": OWNER}, status_code=200,
            summary="Revoke a pending key")
    async def revoke(self, key_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> KeyOut:
        return await services.invite.revoke_key(current_caller(request), key_id, rid=request_id(request))

    @get("/me/users", opt={"roles": OWNER}, summary="The user list (利用者一覧; needs a fresh step-up)")
    async def users(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> UsersOut:
        caller = current_caller(request)
        rid = request_id(request)
        household = await services.invite.household(caller, rid=rid)
        owner = await services.lifecycle.account(caller.account_id, caller=caller, rid=rid)
        representative = household.representative_account_id
        items = [CoUserOut(account_id=owner.account_id, login_id=owner.login_id, email=owner.email, owner=True,
                           representative=representative == owner.account_id, account_type="email_id",
                           account_type_label=ACCOUNT_TYPE_LABELS["email_id"], external_ids=[],
                           registered_at=owner.issued_at, registered_at_text=_registered(owner.issued_at))]
        for co_user in household.co_users:
            kind = co_user.account_type
            items.append(CoUserOut(account_id=co_user.account_id, login_id=co_user.login_id, email=co_user.email,
                                   owner=False, representative=representative == co_user.account_id,
                                   account_type=kind, account_type_label=ACCOUNT_TYPE_LABELS.get(kind, kind),
                                   external_ids=co_user.external_ids, registered_at=co_user.added_at,
                                   registered_at_text=_registered(co_user.added_at)))
        # SNS連携の状況: the providers each person's ID is linked with now (lifecycle keeps the links).
        linked = await asyncio.gather(*(services.lifecycle.links_of(caller, i.account_id, rid=rid) for i in items))
        items = [msgspec.structs.replace(item, external_ids=sorted({*item.external_ids,
                                                                    *(k.provider for k in found.links)}))
                 for item, found in zip(items, linked, strict=True)]
        return UsersOut(items=items)

    @put("/me/users/representative", opt={"roles": OWNER}, status_code=204,
         summary="Change the representative email (代表メールアドレス変更)")
    async def representative(self, data: JSONBody[RepresentativeIn], services: NamedDependency[Services],
                             request: Request[Any, Any, Any]) -> None:
        await services.invite.set_representative(current_caller(request), data, rid=request_id(request))

    @delete("/me/users/{account_id:str}", opt={"roles": OWNER}, status_code=204,
            summary="Remove a co-user; their access ends at once and both are notified")
    async def remove(self, account_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> None:
        await services.invite.remove_co_user(current_caller(request), account_id, rid=request_id(request))

    @get("/me/memberships", opt={"roles": ANY_USER}, summary="Accounts the caller uses as a co-user")
    async def memberships(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> MembershipsOut:
        found = await services.invite.memberships(current_caller(request), rid=request_id(request))
        return MembershipsOut(items=[MembershipOut(owner_id=m.owner_id, owner_login_id=m.owner_login_id,
                                                   added_at=m.added_at) for m in found.items])

    # -- the invitee (public) --------------------------------------------------------------------
    @post("/invitations/requests", opt={"roles": PUBLIC}, status_code=202,
          summary="Mail a confirmation link to the invitee (招待コードをお持ちの方)")
    async def request_link(self, data: JSONBody[InvitationRequestIn], services: NamedDependency[Services],
                           request: Request[Any, Any, Any]) -> InvitationRequestOut:
        return await services.invite.request_link(invite.LinkRequestIn(email=data.email, client_ip=client_ip(request)),
                                                  rid=request_id(request))

    @post("/invitations/links/check", opt={"roles": PUBLIC}, status_code=200,
          summary="Whether a confirmation link can still be used")
    async def check_link(self, data: JSONBody[LinkCheckIn], services: NamedDependency[Services],
                         request: Request[Any, Any, Any]) -> LinkOut:
        return await services.invite.check_link(invite.LinkTokenIn(token=data.token, client_ip=client_ip(request)),
                                                rid=request_id(request))

    @post("/invitations/redeem", opt={"roles": PUBLIC, "problems": (401,)}, status_code=201,
          summary="Redeem a key with a new email-ID account or an existing login")
    async def redeem(self, data: JSONBody[RedeemIn], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> RedeemOut:
        rid = request_id(request)
        if data.account == "existing" and not data.login_id:
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。",
                          errors=[FieldError("loginId", "ログインIDを入力してください。")])
        held = await services.call("invite", "POST", "/internal/invitations/reservations",
                                   json={"token": data.token, "key": data.key, "clientIp": client_ip(request)},
                                   request_id=rid)
        reservation = held["reservationId"]
        released = False
        try:
            if data.account == "new":
                account = await services.call("lifecycle", "POST", "/internal/accounts", request_id=rid, json={
                    "loginId": held["email"], "password": data.password, "roles": NEW_ACCOUNT_ROLES,
                    "email": held["email"]})
            else:
                try:
                    account = await services.call("lifecycle", "POST", "/internal/login", request_id=rid,
                                                  json={"loginId": data.login_id, "password": data.password})
                except ForwardedProblem as refused:
                    if refused.response.status_code != 401:
                        raise
                    released = True  # invite counts the failure against the key and answers the refusal
                    await services.call("invite", "POST",
                                        f"/internal/invitations/reservations/{reservation}/release",
                                        json={"failedLogin": True}, request_id=rid)
                    raise
            done = await services.call("invite", "POST", f"/internal/invitations/reservations/{reservation}/complete",
                                       json={"accountId": account["accountId"], "loginId": account["loginId"],
                                             "email": account["email"], "newAccount": data.account == "new"},
                                       request_id=rid)
        except Exception:
            if not released:
                await _release_quietly(services, reservation, rid)
            raise
        return RedeemOut(account_id=done["accountId"], login_id=done["loginId"], new_account=data.account == "new",
                         owner_login_id=done["ownerLoginId"], login_url=_login_url())


def _login_url() -> str:
    return f"{get_settings().brand.portal_url.rstrip('/')}/login"


async def _release_quietly(services: Services, reservation: str, rid: str | None) -> None:
    """Best effort: if this fails too, the reservation runs out on its own."""
    try:
        await services.call("invite", "POST", f"/internal/invitations/reservations/{reservation}/release",
                            json={"failedLogin": False}, request_id=rid)
    except (Problem, ForwardedProblem):
        pass
