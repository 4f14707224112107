"""Invitations (招待コード / 認証キー): the owner's keys and user list, and the invitee's public flow.

Redemption and the user list are invite's use cases (invite asks lifecycle for the accounts and runs the
reserve → account → complete phases with their rollback): each public request here is one internal call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, post, put
from litestar.di import NamedDependency

from kagi_gateway.deps import ANY_USER, PUBLIC, Call, client_ip, request_id
from kagi_gateway.forward import ApiController, forward
from kagi_gateway.schemas import Dto
from kagi_gateway.services import Services
from kagi_shared.contracts import invite
from kagi_shared.contracts.invite import InviteClient, RedeemedOut, UserOut
from kagi_shared.jst import to_jst

OWNER = ("owner",)
ACCOUNT_TYPE_LABELS = {"email_id": "メールアドレスID", "external_id": "外部サービスID"}


class CoUserOut(UserOut):
    """A row of the user list as the owner reads it: invite's row, with the account type and date in words."""

    account_type_label: str
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


def _registered(moment: datetime) -> str:
    return f"{to_jst(moment):%Y/%m/%d %H:%M:%S}"


class InvitationController(ApiController):
    path = "/api/v1"
    tags = ("invitations",)

    # -- the owner -------------------------------------------------------------------------------
    issue = forward(post("/me/invitations", opt={"roles": OWNER, "idempotent": True}, status_code=201,
                         summary="Issue an invitation key (needs a fresh step-up)"), InviteClient.issue_key)

    keys = forward(get("/me/invitations", opt={"roles": OWNER},
                       summary="The owner's keys: pending, redeemed, expired, revoked"), InviteClient.keys)

    revoke = forward(delete("/me/invitations/{key_id:str}", opt={"roles": OWNER}, status_code=200,
                            summary="Revoke a pending key"), InviteClient.revoke_key)

    @get("/me/users", opt={"roles": OWNER}, summary="The user list (利用者一覧; needs a fresh step-up)")
    async def users(self, call: NamedDependency[Call]) -> UsersOut:
        listed = await call.invite.users(call.caller, rid=call.rid)
        return UsersOut(items=[CoUserOut(**msgspec.structs.asdict(u),
                                         account_type_label=ACCOUNT_TYPE_LABELS.get(u.account_type, u.account_type),
                                         registered_at_text=_registered(u.registered_at))
                               for u in listed.items])

    representative = forward(put("/me/users/representative", opt={"roles": OWNER}, status_code=204,
                                 summary="Change the representative email (代表メールアドレス変更)"),
                             InviteClient.set_representative)

    remove = forward(delete("/me/users/{account_id:str}", opt={"roles": OWNER}, status_code=204,
                            summary="Remove a co-user; their access ends at once and both are notified"),
                     InviteClient.remove_co_user)

    @get("/me/memberships", opt={"roles": ANY_USER}, summary="Accounts the caller uses as a co-user")
    async def memberships(self, call: NamedDependency[Call]) -> MembershipsOut:
        found = await call.invite.memberships(call.caller, rid=call.rid)
        return MembershipsOut(items=[MembershipOut(owner_id=m.owner_id, owner_login_id=m.owner_login_id,
                                                   added_at=m.added_at) for m in found.items])

    # -- the invitee (public) --------------------------------------------------------------------
    request_link = forward(post("/invitations/requests", opt={"roles": PUBLIC, "idempotent": True}, status_code=202,
                                summary="Mail a confirmation link to the invitee (招待コードをお持ちの方)"),
                           InviteClient.request_link, InvitationRequestIn)

    check_link = forward(post("/invitations/links/check", opt={"roles": PUBLIC}, status_code=200,
                              summary="Whether a confirmation link can still be used"),
                         InviteClient.check_link, LinkCheckIn)

    redeem = forward(post("/invitations/redeem", opt={"roles": PUBLIC, "problems": (401,)}, status_code=201,
                          summary="Redeem a key with a new email-ID account or an existing login"),
                     InviteClient.redeem, RedeemIn)


async def redeem_with_external_id(services: Services, request: Request[Any, Any, Any], token: str, key: str,
                                  provider: str, subject: str) -> RedeemedOut:
    """The hosted page's redemption after an external login (never a public API: only the gateway has verified
    the provider's ID token that gave ``subject``)."""
    return await services.invite.redeem(invite.RedeemIn(token=token, key=key, account="external", provider=provider,
                                                        subject=subject, client_ip=client_ip(request)),
                                        rid=request_id(request))
