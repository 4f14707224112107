"""Permissions' internal API: schedule, catalogue, companies, requests, the access review, grant deliveries."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from kagi_shared.contracts import Body, Reply, ServiceClient

if TYPE_CHECKING:
    from kagi_shared.service_api import Caller

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Code = Annotated[str, msgspec.Meta(max_length=16)]
Ip = Annotated[str, msgspec.Meta(max_length=64)]
CompanyRole = Literal["gas_retailer", "consignment_requester", "manufacturer"]


class ScheduleOut(Reply):
    submitted_on: date
    accepted_on: date
    batch_date: date
    effective: dict[str, date]


class IpAllowlistOut(Reply):
    addresses: list[str]


class AdminIn(Body):
    name: Text
    email: Email


class CompanyIn(Body):
    name: Text
    roles: Annotated[list[CompanyRole], msgspec.Meta(max_length=3)]
    primary_admin: AdminIn
    secondary_admin: AdminIn | None = None
    contractors: Annotated[list[Text], msgspec.Meta(max_length=100)] = []
    ip_allowlist: Annotated[list[Ip], msgspec.Meta(max_length=50)] = []
    juju_max_users: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None


class CompanyChangeIn(Body):
    name: Text | None = None
    roles: Annotated[list[CompanyRole], msgspec.Meta(max_length=3)] | None = None
    primary_admin: AdminIn | None = None
    secondary_admin: AdminIn | None = None
    remove_secondary_admin: bool = False
    contractors: Annotated[list[Text], msgspec.Meta(max_length=100)] | None = None
    ip_allowlist: Annotated[list[Ip], msgspec.Meta(max_length=50)] | None = None
    juju_max_users: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None


class AdminOut(Reply):
    name: str
    email: str


class CompanyOut(Reply):
    company_id: str
    name: str
    roles: list[str]
    contractors: list[str]
    primary_admin: AdminOut
    secondary_admin: AdminOut | None
    ip_allowlist: list[str]
    juju_max_users: int | None
    status: str
    registered_at: datetime
    terminated_at: datetime | None


class HeldPermissionOut(Reply):
    system: str
    value: str | None
    label: str


class MyPermissionsOut(Reply):
    # The caller's current permission on every target system (PMS: the permission-management right).
    user_id: str
    company_id: str | None
    permissions: list[HeldPermissionOut]


class TerminationOut(Reply):
    company: CompanyOut
    revoked_users: int


class PermissionsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The permission per system after the request; INFOSITE and PMS are refused with a reason."""

    taxis: Code | None = msgspec.field(default=None, name="TAXIS")
    johs: Code | None = msgspec.field(default=None, name="JOHS")
    juju: Code | None = msgspec.field(default=None, name="JUJU")
    loacus: Code | None = msgspec.field(default=None, name="LOACUS")
    infosite: Code | None = msgspec.field(default=None, name="INFOSITE")
    pms: Code | None = msgspec.field(default=None, name="PMS")

    def as_dict(self) -> dict[str, str | None]:
        return {k.upper(): v for k, v in msgspec.structs.asdict(self).items()}


class RequestIn(Body):
    kind: Literal["new", "change", "revoke"]
    user_id: Email
    permissions: PermissionsIn = PermissionsIn()
    name_kanji: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    name_kana: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    contractor: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    memo: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class CancelIn(Body):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class BatchIn(Body):
    batch_date: date


class BatchOut(Reply):
    batch_date: date
    requests: int
    commands: int


class SystemOut(Reply):
    system: str
    before: str | None
    after: str | None
    before_label: str
    after_label: str
    timing: str
    state: str
    display: str
    effective_on: date | None
    attempts: int
    reason: str | None
    completed_at: datetime | None
    completed_by: str | None


class RequestOut(Reply):
    request_id: str
    company_id: str
    kind: str
    kind_label: str
    origin: str
    user_id: str
    name_kanji: str
    name_kana: str
    contractor: str | None
    memo: str
    status: str
    status_label: str
    display: dict[str, str]
    submitted_at: datetime
    submitted_on: date
    accepted_on: date | None
    batch_date: date | None
    cancel_reason: str | None
    systems: list[SystemOut]


class DraftOut(Reply):
    draft_id: str
    user_id: str
    kind: str
    reason: str
    created_at: datetime


class GrantDeliveryOut(Reply):
    request_id: str
    company_id: str
    user_id: str
    system: str
    state: str
    reason: str | None
    attempts: int
    sent_at: datetime | None


class ReviewUserOut(Reply):
    user_id: str
    name_kanji: str
    name_kana: str
    contractor: str | None
    permissions: dict[str, str | None]
    permission_labels: dict[str, str]
    last_login_at: datetime | None
    decision: str
    decision_label: str
    decided_at: datetime | None
    request_id: str | None


class ReviewOut(Reply):
    review_id: str
    started_at: datetime
    started_by: str
    status: str
    users: list[ReviewUserOut]


class ReviewDecisionIn(Body):
    user_id: Email
    decision: Literal["keep", "revoke"]


class ReportOut(Reply):
    filename: str
    csv: str


class PermissionsClient(ServiceClient):
    service = "permissions"

    async def schedule(self, submitted_on: str, *, rid: str | None = None) -> ScheduleOut:
        return await self._call(ScheduleOut, "GET", "/internal/schedule", params={"submitted_on": submitted_on},
                                rid=rid)

    async def catalogue(self, caller: Caller, *, rid: str | None = None) -> dict[str, Any]:
        return await self._call(dict[str, Any], "GET", "/internal/catalogue", caller=caller, rid=rid)

    async def ip_allowlist(self) -> IpAllowlistOut:
        return await self._call(IpAllowlistOut, "GET", "/internal/ip-allowlist")

    # -- companies -------------------------------------------------------------------------------
    async def my_company(self, caller: Caller, *, rid: str | None = None) -> CompanyOut:
        return await self._call(CompanyOut, "GET", "/internal/my-company", caller=caller, rid=rid)

    async def register_company(self, caller: Caller, data: CompanyIn, *, rid: str | None = None) -> CompanyOut:
        return await self._call(CompanyOut, "POST", "/internal/companies", caller=caller, body=data, rid=rid)

    async def companies(self, caller: Caller, *, rid: str | None = None) -> list[CompanyOut]:
        return await self._call(list[CompanyOut], "GET", "/internal/companies", caller=caller, rid=rid)

    async def company(self, caller: Caller, company_id: str, *, rid: str | None = None) -> CompanyOut:
        return await self._call(CompanyOut, "GET", "/internal/companies/{company_id}", company_id=company_id,
                                caller=caller, rid=rid)

    async def change_company(self, caller: Caller, company_id: str, data: CompanyChangeIn, *,
                             rid: str | None = None) -> CompanyOut:
        return await self._call(CompanyOut, "PATCH", "/internal/companies/{company_id}", company_id=company_id,
                                caller=caller, body=data, rid=rid)

    async def terminate_company(self, caller: Caller, company_id: str, *, rid: str | None = None) -> TerminationOut:
        return await self._call(TerminationOut, "POST", "/internal/companies/{company_id}/termination",
                                company_id=company_id, caller=caller, rid=rid)

    async def my_permissions(self, caller: Caller, *, rid: str | None = None) -> MyPermissionsOut:
        return await self._call(MyPermissionsOut, "GET", "/internal/me/permissions", caller=caller, rid=rid)

    # -- requests --------------------------------------------------------------------------------
    async def submit(self, caller: Caller, data: RequestIn, *, rid: str | None = None) -> RequestOut:
        return await self._call(RequestOut, "POST", "/internal/requests", caller=caller, body=data, rid=rid)

    async def search(self, caller: Caller, *, status: str | None = None, user_id: str | None = None,
                     company_id: str | None = None, rid: str | None = None) -> list[RequestOut]:
        params = {k: v for k, v in {"status": status, "user_id": user_id, "company_id": company_id}.items() if v}
        return await self._call(list[RequestOut], "GET", "/internal/requests", caller=caller, params=params, rid=rid)

    async def request(self, caller: Caller, request_id: str, *, rid: str | None = None) -> RequestOut:
        return await self._call(RequestOut, "GET", "/internal/requests/{request_id}", request_id=request_id,
                                caller=caller, rid=rid)

    async def drafts(self, caller: Caller, *, rid: str | None = None) -> list[DraftOut]:
        return await self._call(list[DraftOut], "GET", "/internal/drafts", caller=caller, rid=rid)

    async def confirm_draft(self, caller: Caller, draft_id: str, *, rid: str | None = None) -> RequestOut:
        return await self._call(RequestOut, "POST", "/internal/drafts/{draft_id}/confirm", draft_id=draft_id,
                                caller=caller, rid=rid)

    async def accept(self, caller: Caller, request_id: str, *, rid: str | None = None) -> RequestOut:
        return await self._call(RequestOut, "POST", "/internal/requests/{request_id}/accept", request_id=request_id,
                                caller=caller, rid=rid)

    async def cancel(self, caller: Caller, request_id: str, data: CancelIn, *, rid: str | None = None) -> RequestOut:
        return await self._call(RequestOut, "POST", "/internal/requests/{request_id}/cancel", request_id=request_id,
                                caller=caller, body=data, rid=rid)

    async def complete(self, caller: Caller, request_id: str, system: str, *, rid: str | None = None) -> RequestOut:
        return await self._call(RequestOut, "POST", "/internal/requests/{request_id}/systems/{system}/completion",
                                request_id=request_id, system=system, caller=caller, rid=rid)

    async def retry(self, caller: Caller, request_id: str, system: str, *, rid: str | None = None) -> RequestOut:
        return await self._call(RequestOut, "POST", "/internal/requests/{request_id}/systems/{system}/retry",
                                request_id=request_id, system=system, caller=caller, rid=rid)

    async def run_batch(self, caller: Caller, data: BatchIn, *, rid: str | None = None) -> BatchOut:
        return await self._call(BatchOut, "POST", "/internal/batches", caller=caller, body=data, rid=rid)

    async def deliveries(self, caller: Caller, which: str, *, rid: str | None = None) -> list[GrantDeliveryOut]:
        return await self._call(list[GrantDeliveryOut], "GET", "/internal/deliveries", caller=caller,
                                params={"which": which}, rid=rid)

    # -- the access review -----------------------------------------------------------------------
    async def users(self, caller: Caller, *, rid: str | None = None) -> list[ReviewUserOut]:
        return await self._call(list[ReviewUserOut], "GET", "/internal/users", caller=caller, rid=rid)

    async def start_review(self, caller: Caller, *, rid: str | None = None) -> ReviewOut:
        return await self._call(ReviewOut, "POST", "/internal/reviews", caller=caller, rid=rid)

    async def reviews(self, caller: Caller, *, rid: str | None = None) -> list[ReviewOut]:
        return await self._call(list[ReviewOut], "GET", "/internal/reviews", caller=caller, rid=rid)

    async def review(self, caller: Caller, review_id: str, *, rid: str | None = None) -> ReviewOut:
        return await self._call(ReviewOut, "GET", "/internal/reviews/{review_id}", review_id=review_id, caller=caller,
                                rid=rid)

    async def decide(self, caller: Caller, review_id: str, data: ReviewDecisionIn, *,
                     rid: str | None = None) -> ReviewOut:
        return await self._call(ReviewOut, "POST", "/internal/reviews/{review_id}/decisions", review_id=review_id,
                                caller=caller, body=data, rid=rid)

    async def report(self, caller: Caller, review_id: str, *, rid: str | None = None) -> ReportOut:
        return await self._call(ReportOut, "GET", "/internal/reviews/{review_id}/report", review_id=review_id,
                                caller=caller, rid=rid)
