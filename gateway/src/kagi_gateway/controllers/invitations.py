"""Invitations (招待コード / 認証キー): the owner's keys and user list, and the invitee's public flow.

Redemption and the user list are invite's use cases (invite asks lifecycle for the accounts and runs the
reserve → account → complete phases with their rollback): each public request here is one internal call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from kagi_gateway.deps import ANY_USER, PUBLIC, client_ip, current_caller, request_id
from kagi_gateway.schemas import Dto
from kagi_gateway.services import Services
from kagi_shared.jst import to_jst

OWNER = ("owner",)
ACCOUNT_TYPE_LABELS = {"email_id": "メールアドレスID", "external_id": "外部サービスID"}


class IssuedKeyOut(Dto):
    key_id: str
    key: str
    expires_at: datetime
    expires_at_text: str
    login_url: str


class KeyOut(Dto):
    key_id: str
    status: Literal["pending", "redeemed", "expired", "revoked", "voided"]
    issued_at: datetime
    expires_at: datetime
    expires_at_text: str
    redeemed_at: datetime | None = None
    redeemed_by: str | None = None


class KeysOut(Dto):
    items: list[KeyOut]


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


class RepresentativeIn(Dto):
    account_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class MembershipOut(Dto):
    owner_id: str
    owner_login_id: str
    added_at: datetime


class MembershipsOut(Dto):
    items: list[MembershipOut]


class InvitationRequestIn(Dto):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]


class InvitationRequestOut(Dto):
    sent_to: str
    link_expires_at: datetime


class LinkCheckIn(Dto):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class LinkOut(Dto):
    email: str
    expires_at: datetime


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
        reply = await services.call("invite", "POST", "/internal/invitations", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, IssuedKeyOut)

    @get("/me/invitations", opt={"roles": OWNER}, summary="The owner's keys: pending, redeemed, expired, revoked")
    async def keys(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> KeysOut:
        reply = await services.call("invite", "GET", "/internal/invitations", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, KeysOut)

    @delete("/me/invitations/{key_id:str}", opt={"roles": OWNER}, status_code=200,
            summary="Revoke a pending key")
    async def revoke(self, key_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> KeyOut:
        reply = await services.call("invite", "DELETE", f"/internal/invitations/{key_id}",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, KeyOut)

    @get("/me/users", opt={"roles": OWNER}, summary="The user list (利用者一覧; needs a fresh step-up)")
    async def users(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> UsersOut:
        reply = await services.call("invite", "GET", "/internal/users", caller=current_caller(request),
                                    request_id=request_id(request))
        items = []
        for user in reply["items"]:
            registered = msgspec.convert(user["registeredAt"], datetime)
            kind = user["accountType"]
            items.append(CoUserOut(account_id=user["accountId"], login_id=user["loginId"], email=user["email"],
                                   owner=user["owner"], representative=user["representative"], account_type=kind,
                                   account_type_label=ACCOUNT_TYPE_LABELS.get(kind, kind),
                                   external_ids=user["externalIds"], registered_at=registered,
                                   registered_at_text=_registered(registered)))
        return UsersOut(items=items)

    @put("/me/users/representative", opt={"roles": OWNER}, status_code=204,
         summary="Change the representative email (代表メールアドレス変更)")
    async def representative(self, data: JSONBody[RepresentativeIn], services: NamedDependency[Services],
                             request: Request[Any, Any, Any]) -> None:
        await services.call("invite", "PUT", "/internal/users/representative", caller=current_caller(request),
                            json={"accountId": data.account_id}, request_id=request_id(request))

    @delete("/me/users/{account_id:str}", opt={"roles": OWNER}, status_code=204,
            summary="Remove a co-user; their access ends at once and both are notified")
    async def remove(self, account_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> None:
        await services.call("invite", "DELETE", f"/internal/users/{account_id}", caller=current_caller(request),
                            request_id=request_id(request))

    @get("/me/memberships", opt={"roles": ANY_USER}, summary="Accounts the caller uses as a co-user")
    async def memberships(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> MembershipsOut:
        reply = await services.call("invite", "GET", "/internal/memberships", caller=current_caller(request),
                                    request_id=request_id(request))
        return MembershipsOut(items=[MembershipOut(owner_id=m["ownerId"], owner_login_id=m["ownerLoginId"],
                                                   added_at=msgspec.convert(m["addedAt"], datetime))
                                     for m in reply["items"]])

    # -- the invitee (public) --------------------------------------------------------------------
    @post("/invitations/requests", opt={"roles": PUBLIC}, status_code=202,
          summary="Mail a confirmation link to the invitee (招待コードをお持ちの方)")
    async def request_link(self, data: JSONBody[InvitationRequestIn], services: NamedDependency[Services],
                           request: Request[Any, Any, Any]) -> InvitationRequestOut:
        reply = await services.call("invite", "POST", "/internal/invitations/requests",
                                    json={"email": data.email, "clientIp": client_ip(request)},
                                    request_id=request_id(request))
        return msgspec.convert(reply, InvitationRequestOut)

    @post("/invitations/links/check", opt={"roles": PUBLIC}, status_code=200,
          summary="Whether a confirmation link can still be used")
    async def check_link(self, data: JSONBody[LinkCheckIn], services: NamedDependency[Services],
                         request: Request[Any, Any, Any]) -> LinkOut:
        reply = await services.call("invite", "POST", "/internal/invitations/links/check",
                                    json={"token": data.token, "clientIp": client_ip(request)},
                                    request_id=request_id(request))
        return msgspec.convert(reply, LinkOut)

    @post("/invitations/redeem", opt={"roles": PUBLIC, "problems": (401,)}, status_code=201,
          summary="Redeem a key with a new email-ID account or an existing login")
    async def redeem(self, data: JSONBody[RedeemIn], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> RedeemOut:
        reply = await services.call("invite", "POST", "/internal/invitations/redeem", request_id=request_id(request),
                                    json={"token": data.token, "key": data.key, "account": data.account,
                                          "password": data.password, "loginId": data.login_id,
                                          "clientIp": client_ip(request)})
        return msgspec.convert(reply, RedeemOut)


async def redeem_with_external_id(services: Services, request: Request[Any, Any, Any], token: str, key: str,
                                  provider: str, subject: str) -> RedeemOut:
    """The hosted page's redemption after an external login (never a public API: only the gateway has verified
    the provider's ID token that gave ``subject``)."""
    reply = await services.call("invite", "POST", "/internal/invitations/redeem", request_id=request_id(request),
                                json={"token": token, "key": key, "account": "external", "provider": provider,
                                      "subject": subject, "clientIp": client_ip(request)})
    return msgspec.convert(reply, RedeemOut)

