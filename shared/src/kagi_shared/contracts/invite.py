"""Invite's internal API: the step-up check, invitation keys and their redemption, the user list, usage locations
and viewer keys, water contract claims, SMS verification and withdrawal (退会)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from kagi_shared.contracts import Body, Reply, ServiceClient

if TYPE_CHECKING:
    from kagi_shared.service_api import Caller

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Token = Annotated[str, msgspec.Meta(max_length=256)]


# -- step-up (追加認証) -----------------------------------------------------------------------------
class StepUpIssuedOut(Reply):
    code_id: str
    expires_at: datetime
    sent_to: str


class StepUpVerifyIn(Body):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class StepUpStateOut(Reply):
    verified: bool
    valid_until: datetime | None = None


# -- invitation keys and redemption ----------------------------------------------------------------
class IssuedKeyOut(Reply):
    key_id: str
    key: str
    expires_at: datetime
    expires_at_text: str
    login_url: str


class KeyOut(Reply):
    key_id: str
    status: Literal["pending", "redeemed", "expired", "revoked", "voided"]
    issued_at: datetime
    expires_at: datetime
    expires_at_text: str
    redeemed_at: datetime | None = None
    redeemed_by: str | None = None


class KeysOut(Reply):
    items: list[KeyOut]


class LinkRequestIn(Body):
    email: Annotated[str, msgspec.Meta(max_length=320)]
    client_ip: str | None = None


class InvitationRequestOut(Reply):
    sent_to: str
    link_expires_at: datetime


class LinkTokenIn(Body):
    token: Token
    client_ip: str | None = None


class LinkOut(Reply):
    email: str
    expires_at: datetime


class RedeemIn(Body):
    token: Token
    key: Token
    account: Literal["new", "existing", "external"]
    """``new``: an email-ID account on the confirmed address; ``existing``: log in to an account; ``external``: the
    account of an external ID the gateway has verified (``provider``, ``subject``), made for the invitee if none."""
    password: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    login_id: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    provider: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")] | None = None
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    client_ip: str | None = None


class RedeemedOut(Reply):
    account_id: str
    login_id: str
    new_account: bool
    owner_login_id: str
    login_url: str


class HouseholdMemberOut(Reply):
    owner_id: str
    owner_login_id: str
    account_id: str
    login_id: str
    email: str
    account_type: str
    external_ids: list[str]
    added_at: datetime


class UserOut(Reply):
    """A row of the user list (利用者一覧): the owner first, then the co-users, each with their SNS links."""

    account_id: str
    login_id: str
    email: str
    owner: bool
    representative: bool
    account_type: str
    external_ids: list[str]
    registered_at: datetime


class UsersOut(Reply):
    items: list[UserOut]


class RepresentativeIn(Body):
    account_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class HouseholdMembershipsOut(Reply):
    items: list[HouseholdMemberOut]


# -- usage locations and viewer keys ---------------------------------------------------------------
class LocationOut(Reply):
    location_id: str
    supply_point_number: str
    customer_number: str
    name: str
    address: str


class LocationPageOut(Reply):
    items: list[LocationOut]
    total: int
    page: int
    per_page: int


class ViewerKeyOut(Reply):
    key_id: str
    key: str
    expires_at: datetime
    expires_at_text: str
    location: LocationOut


class ViewerOut(Reply):
    account_id: str
    login_id: str
    added_at: datetime


class ViewersOut(Reply):
    items: list[ViewerOut]


class AddViewingIn(Body):
    key: Annotated[str, msgspec.Meta(max_length=64)]


class ViewingOut(Reply):
    items: list[LocationOut]


class StatementOut(Reply):
    month: str
    amount_yen: int
    usage_kwh: float


class ReadingOut(Reply):
    day: date
    kwh: float


class LocationDataOut(Reply):
    location: LocationOut
    contract: dict[str, str]
    statements: list[StatementOut]
    energy: list[ReadingOut]


# -- water contract claims (お客さま番号の登録) and SMS verification ------------------------------------
class ClaimIn(Body):
    customer_number: Short
    billing_number: Short
    phone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    service_address: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    debit_last4: Annotated[str, msgspec.Meta(max_length=8)] | None = None


class ClaimOut(Reply):
    customer_number: str
    name: str
    main: bool
    linked_at: datetime


class LinkedOut(Reply):
    claim: ClaimOut
    count: int
    warning: str | None = None


class ClaimsOut(Reply):
    items: list[ClaimOut]
    count: int
    warning: str | None = None


class WaterContractOut(Reply):
    customer_number: str
    name: str
    service_address: str
    main: bool


class MainIn(Body):
    customer_number: Short


class WithdrawnOut(Reply):
    contracts_unlinked: int


class SmsIn(Body):
    mobile: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class SmsIssuedOut(Reply):
    sent_to: str
    expires_at: datetime


class SmsVerifyIn(Body):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class RegistrationOut(Reply):
    sms_verified: bool
    contracts: int
    sms_verified_at: datetime | None = None


class InviteClient(ServiceClient):
    service = "invite"

    # -- step-up ---------------------------------------------------------------------------------
    async def issue_step_up(self, caller: Caller, *, rid: str | None = None) -> StepUpIssuedOut:
        return await self._call(StepUpIssuedOut, "POST", "/internal/step-up", caller=caller, rid=rid)

    async def verify_step_up(self, caller: Caller, data: StepUpVerifyIn, *, rid: str | None = None) -> StepUpStateOut:
        return await self._call(StepUpStateOut, "POST", "/internal/step-up/verify", caller=caller, body=data, rid=rid)

    async def step_up(self, caller: Caller, *, rid: str | None = None) -> StepUpStateOut:
        return await self._call(StepUpStateOut, "GET", "/internal/step-up", caller=caller, rid=rid)

    # -- the owner's keys and user list ----------------------------------------------------------
    async def issue_key(self, caller: Caller, *, rid: str | None = None) -> IssuedKeyOut:
        return await self._call(IssuedKeyOut, "POST", "/internal/invitations", caller=caller, rid=rid)

    async def keys(self, caller: Caller, *, rid: str | None = None) -> KeysOut:
        return await self._call(KeysOut, "GET", "/internal/invitations", caller=caller, rid=rid)

    async def revoke_key(self, caller: Caller, key_id: str, *, rid: str | None = None) -> KeyOut:
        return await self._call(KeyOut, "DELETE", "/internal/invitations/{key_id}", key_id=key_id, caller=caller,
                                rid=rid)

    async def users(self, caller: Caller, *, rid: str | None = None) -> UsersOut:
        return await self._call(UsersOut, "GET", "/internal/users", caller=caller, rid=rid)

    async def set_representative(self, caller: Caller, data: RepresentativeIn, *, rid: str | None = None) -> None:
        await self._send("PUT", "/internal/users/representative", caller=caller, body=data, rid=rid)

    async def remove_co_user(self, caller: Caller, account_id: str, *, rid: str | None = None) -> None:
        await self._send("DELETE", "/internal/users/{account_id}", account_id=account_id, caller=caller, rid=rid)

    async def memberships(self, caller: Caller, *, rid: str | None = None) -> HouseholdMembershipsOut:
        return await self._call(HouseholdMembershipsOut, "GET", "/internal/memberships", caller=caller, rid=rid)

    # -- the invitee -----------------------------------------------------------------------------
    async def request_link(self, data: LinkRequestIn, *, rid: str | None = None) -> InvitationRequestOut:
        return await self._call(InvitationRequestOut, "POST", "/internal/invitations/requests", body=data, rid=rid)

    async def check_link(self, data: LinkTokenIn, *, rid: str | None = None) -> LinkOut:
        return await self._call(LinkOut, "POST", "/internal/invitations/links/check", body=data, rid=rid)

    async def redeem(self, data: RedeemIn, *, rid: str | None = None) -> RedeemedOut:
        """Invite runs reserve → account (lifecycle) → complete, giving the key back on any failure."""
        return await self._call(RedeemedOut, "POST", "/internal/invitations/redeem", body=data, rid=rid, chained=True)

    # -- usage locations and viewing -------------------------------------------------------------
    async def locations(self, caller: Caller, q: str, page: int, per_page: int, *,
                        rid: str | None = None) -> LocationPageOut:
        return await self._call(LocationPageOut, "GET", "/internal/locations", caller=caller,
                                params={"q": q, "page": str(page), "per_page": str(per_page)}, rid=rid)

    async def issue_viewer_key(self, caller: Caller, location_id: str, *, rid: str | None = None) -> ViewerKeyOut:
        return await self._call(ViewerKeyOut, "POST", "/internal/locations/{location_id}/viewer-keys",
                                location_id=location_id, caller=caller, rid=rid)

    async def viewers(self, caller: Caller, location_id: str, *, rid: str | None = None) -> ViewersOut:
        return await self._call(ViewersOut, "GET", "/internal/locations/{location_id}/viewers",
                                location_id=location_id, caller=caller, rid=rid)

    async def remove_viewer(self, caller: Caller, location_id: str, account_id: str, *,
                            rid: str | None = None) -> None:
        await self._send("DELETE", "/internal/locations/{location_id}/viewers/{account_id}", location_id=location_id,
                         account_id=account_id, caller=caller, rid=rid)

    async def add_viewing(self, caller: Caller, data: AddViewingIn, *, rid: str | None = None) -> LocationOut:
        return await self._call(LocationOut, "POST", "/internal/viewing-locations", caller=caller, body=data, rid=rid)

    async def viewing(self, caller: Caller, *, rid: str | None = None) -> ViewingOut:
        return await self._call(ViewingOut, "GET", "/internal/viewing-locations", caller=caller, rid=rid)

    async def location_data(self, caller: Caller, location_id: str, *, rid: str | None = None) -> LocationDataOut:
        return await self._call(LocationDataOut, "GET", "/internal/viewing-locations/{location_id}",
                                location_id=location_id, caller=caller, rid=rid)

    # -- water contract claims -------------------------------------------------------------------
    async def link_contract(self, caller: Caller, data: ClaimIn, *, rid: str | None = None) -> LinkedOut:
        return await self._call(LinkedOut, "POST", "/internal/contracts", caller=caller, body=data, rid=rid)

    async def claims(self, caller: Caller, *, rid: str | None = None) -> ClaimsOut:
        return await self._call(ClaimsOut, "GET", "/internal/contracts", caller=caller, rid=rid)

    async def set_main(self, caller: Caller, data: MainIn, *, rid: str | None = None) -> None:
        await self._send("PUT", "/internal/contracts/main", caller=caller, body=data, rid=rid)

    async def contract(self, caller: Caller, customer_number: str, *, rid: str | None = None) -> WaterContractOut:
        return await self._call(WaterContractOut, "GET", "/internal/contracts/{customer_number}",
                                customer_number=customer_number, caller=caller, rid=rid)

    async def unlink_contract(self, caller: Caller, customer_number: str, *, rid: str | None = None) -> None:
        await self._send("DELETE", "/internal/contracts/{customer_number}", customer_number=customer_number,
                         caller=caller, rid=rid)

    async def withdraw(self, caller: Caller, *, rid: str | None = None) -> WithdrawnOut:
        return await self._call(WithdrawnOut, "POST", "/internal/withdrawal", caller=caller, rid=rid)

    async def registration(self, caller: Caller, *, rid: str | None = None) -> RegistrationOut:
        return await self._call(RegistrationOut, "GET", "/internal/registration", caller=caller, rid=rid)

    async def issue_sms(self, caller: Caller, data: SmsIn, *, rid: str | None = None) -> SmsIssuedOut:
        return await self._call(SmsIssuedOut, "POST", "/internal/sms-verification", caller=caller, body=data, rid=rid)

    async def verify_sms(self, caller: Caller, data: SmsVerifyIn, *, rid: str | None = None) -> RegistrationOut:
        return await self._call(RegistrationOut, "POST", "/internal/sms-verification/verify", caller=caller,
                                body=data, rid=rid)
