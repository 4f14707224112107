"""Permission provisioning (SPEC §3): schedule preview, catalogue, requests (company admins), companies and the
request workflow (operators). Every answer comes from the permissions service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from kagi_gateway.deps import PUBLIC, current_caller, request_id
from kagi_gateway.services import Services

ADMIN = ("company_admin",)
OPERATOR = ("operator",)
ADMIN_OR_OPERATOR = ("company_admin", "operator")

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Code = Annotated[str, msgspec.Meta(max_length=16)]
Ip = Annotated[str, msgspec.Meta(max_length=64)]


class Dto(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class ScheduleOut(Dto):
    submitted_on: date
    accepted_on: date
    batch_date: date
    effective: dict[str, date]


class AdminIn(Dto):
    name: Text
    email: Email


class CompanyIn(Dto):
    name: Text
    roles: Annotated[list[Literal["gas_retailer", "consignment_requester", "manufacturer"]], msgspec.Meta(max_length=3)]
    primary_admin: AdminIn
    secondary_admin: AdminIn | None = None
    contractors: Annotated[list[Text], msgspec.Meta(max_length=100)] = []
    ip_allowlist: Annotated[list[Ip], msgspec.Meta(max_length=50)] = []
    juju_max_users: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None


class CompanyChangeIn(Dto):
    name: Text | None = None
    roles: Annotated[list[Literal["gas_retailer", "consignment_requester", "manufacturer"]],
                     msgspec.Meta(max_length=3)] | None = None
    primary_admin: AdminIn | None = None
    secondary_admin: AdminIn | None = None
    remove_secondary_admin: bool = False
    contractors: Annotated[list[Text], msgspec.Meta(max_length=100)] | None = None
    ip_allowlist: Annotated[list[Ip], msgspec.Meta(max_length=50)] | None = None
    juju_max_users: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None


class AdminOut(Dto):
    name: str
    email: str


class CompanyOut(Dto):
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


class TerminationOut(Dto):
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


class RequestIn(Dto):
    kind: Literal["new", "change", "revoke"]
    user_id: Email
    permissions: PermissionsIn = PermissionsIn()
    name_kanji: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    name_kana: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    contractor: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    memo: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class CancelIn(Dto):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class BatchIn(Dto):
    batch_date: date


class BatchOut(Dto):
    batch_date: date
    requests: int
    commands: int


class SystemOut(Dto):
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


class RequestOut(Dto):
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


class DraftOut(Dto):
    draft_id: str
    user_id: str
    kind: str
    reason: str
    created_at: datetime


class ReviewUserOut(Dto):
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


class ReviewOut(Dto):
    review_id: str
    started_at: datetime
    started_by: str
    status: str
    users: list[ReviewUserOut]


class ReviewDecisionIn(Dto):
    user_id: Email
    decision: Literal["keep", "revoke"]


class GrantDeliveryOut(Dto):
    request_id: str
    company_id: str
    user_id: str
    system: str
    state: str
    reason: str | None
    attempts: int
    sent_at: datetime | None


def _body(data: msgspec.Struct) -> Any:
    return msgspec.to_builtins(data)


class PermissionRequestController(Controller):
    """Company admins (システム窓口責任者) file and follow requests; anyone may preview the schedule."""

    path = "/api/v1"
    tags = ("permissions",)

    @get("/permission-requests/schedule", opt={"roles": PUBLIC},
         summary="Projected acceptance, batch and usable-from dates for a submission date")
    async def schedule(self, services: NamedDependency[Services], request: Request[Any, Any, Any],
                       submitted_on: Annotated[str, QueryParameter(name="submittedOn", max_length=32)]) -> ScheduleOut:
        reply = await services.call("permissions", "GET", "/internal/schedule", params={"submitted_on": submitted_on},
                                    request_id=request_id(request))
        return msgspec.convert(reply, ScheduleOut)

    @get("/permissions/catalogue", opt={"roles": ADMIN_OR_OPERATOR},
         summary="Target systems, permission codes and the TAXIS/LOACUS function matrices")
    async def catalogue(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> dict[str, Any]:
        reply = await services.call("permissions", "GET", "/internal/catalogue", caller=current_caller(request),
                                    request_id=request_id(request))
        return dict(reply)

    @get("/company", opt={"roles": ADMIN}, summary="The admin's own company")
    async def my_company(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> CompanyOut:
        reply = await services.call("permissions", "GET", "/internal/my-company", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, CompanyOut)

    @post("/permission-requests", opt={"roles": ADMIN}, status_code=201,
          summary="File a new (設定), change (変更) or revoke (抹消) request")
    async def submit(self, data: JSONBody[RequestIn], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> RequestOut:
        reply = await services.call("permissions", "POST", "/internal/requests", caller=current_caller(request),
                                    json=_body(data), request_id=request_id(request))
        return msgspec.convert(reply, RequestOut)

    @get("/permission-requests", opt={"roles": ADMIN_OR_OPERATOR}, summary="Search requests and their status")
    async def search(self, services: NamedDependency[Services], request: Request[Any, Any, Any],
                     status: Annotated[Literal["submitted", "accepted", "cancelled", "in_progress", "complete"] | None,
                                       QueryParameter(name="status")] = None,
                     user_id: Annotated[str | None, QueryParameter(name="userId", max_length=254)] = None,
                     company_id: Annotated[str | None, QueryParameter(name="companyId", max_length=64)] = None,
                     ) -> list[RequestOut]:
        params = {k: v for k, v in {"status": status, "user_id": user_id, "company_id": company_id}.items() if v}
        reply = await services.call("permissions", "GET", "/internal/requests", caller=current_caller(request),
                                    params=params, request_id=request_id(request))
        return msgspec.convert(reply, list[RequestOut])

    @get("/permission-requests/{request_id_:str}", opt={"roles": ADMIN_OR_OPERATOR}, summary="One request")
    async def view(self, request_id_: FromPath[str], services: NamedDependency[Services],
                   request: Request[Any, Any, Any]) -> RequestOut:
        reply = await services.call("permissions", "GET", f"/internal/requests/{request_id_}",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, RequestOut)

    @get("/permission-request-drafts", opt={"roles": ADMIN},
         summary="Prefilled revoke requests for purged IDs, waiting for the admin's confirmation")
    async def drafts(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> list[DraftOut]:
        reply = await services.call("permissions", "GET", "/internal/drafts", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, list[DraftOut])

    @post("/permission-request-drafts/{draft_id:str}/confirm", opt={"roles": ADMIN}, status_code=201,
          summary="File the prefilled revoke request of a purged ID")
    async def confirm_draft(self, draft_id: FromPath[str], services: NamedDependency[Services],
                            request: Request[Any, Any, Any]) -> RequestOut:
        reply = await services.call("permissions", "POST", f"/internal/drafts/{draft_id}/confirm",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, RequestOut)


class AccessReviewController(Controller):
    """The admin's access review (棚卸): every user with permissions and last login; keep or revoke each."""

    path = "/api/v1"
    tags = ("access-review",)

    @get("/company/users", opt={"roles": ADMIN}, summary="Every user of the company with permissions and last login")
    async def users(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> list[ReviewUserOut]:
        reply = await services.call("permissions", "GET", "/internal/users", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, list[ReviewUserOut])

    @post("/access-reviews", opt={"roles": ADMIN}, status_code=201, summary="Start a review campaign")
    async def start(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> ReviewOut:
        reply = await services.call("permissions", "POST", "/internal/reviews", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, ReviewOut)

    @get("/access-reviews", opt={"roles": ADMIN}, summary="The company's review campaigns")
    async def campaigns(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> list[ReviewOut]:
        reply = await services.call("permissions", "GET", "/internal/reviews", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, list[ReviewOut])

    @get("/access-reviews/{review_id:str}", opt={"roles": ADMIN}, summary="One review campaign")
    async def campaign(self, review_id: FromPath[str], services: NamedDependency[Services],
                       request: Request[Any, Any, Any]) -> ReviewOut:
        reply = await services.call("permissions", "GET", f"/internal/reviews/{review_id}",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, ReviewOut)

    @post("/access-reviews/{review_id:str}/decisions", opt={"roles": ADMIN}, status_code=200,
          summary="Keep or revoke one user (a revoke files a revoke request)")
    async def decide(self, review_id: FromPath[str], data: JSONBody[ReviewDecisionIn],
                     services: NamedDependency[Services], request: Request[Any, Any, Any]) -> ReviewOut:
        reply = await services.call("permissions", "POST", f"/internal/reviews/{review_id}/decisions",
                                    caller=current_caller(request), json=_body(data), request_id=request_id(request))
        return msgspec.convert(reply, ReviewOut)

    @get("/access-reviews/{review_id:str}/report.csv", opt={"roles": ADMIN}, summary="The campaign report as CSV",
         media_type="text/csv")
    async def report(self, review_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> Response[str]:
        reply = await services.call("permissions", "GET", f"/internal/reviews/{review_id}/report",
                                    caller=current_caller(request), request_id=request_id(request))
        return Response(content=reply["csv"], media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{reply["filename"]}"'})


class PermissionOperatorController(Controller):
    """The operator (託送受付センター): companies, acceptance, the batch, completions and retries."""

    path = "/api/v1/operator"
    tags = ("permissions-operator",)

    @post("/companies", opt={"roles": OPERATOR}, status_code=201, summary="Register a company with its admins")
    async def register_company(self, data: JSONBody[CompanyIn], services: NamedDependency[Services],
                               request: Request[Any, Any, Any]) -> CompanyOut:
        reply = await services.call("permissions", "POST", "/internal/companies", caller=current_caller(request),
                                    json=_body(data), request_id=request_id(request))
        return msgspec.convert(reply, CompanyOut)

    @get("/companies", opt={"roles": OPERATOR}, summary="Every company")
    async def companies(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> list[CompanyOut]:
        reply = await services.call("permissions", "GET", "/internal/companies", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, list[CompanyOut])

    @get("/companies/{company_id:str}", opt={"roles": OPERATOR}, summary="One company")
    async def company(self, company_id: FromPath[str], services: NamedDependency[Services],
                      request: Request[Any, Any, Any]) -> CompanyOut:
        reply = await services.call("permissions", "GET", f"/internal/companies/{company_id}",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, CompanyOut)

    @patch("/companies/{company_id:str}", opt={"roles": OPERATOR},
           summary="Change a company (an admin change issues the new admin's ID; user grants stay)")
    async def change_company(self, company_id: FromPath[str], data: JSONBody[CompanyChangeIn],
                             services: NamedDependency[Services],
                             request: Request[Any, Any, Any]) -> CompanyOut:
        reply = await services.call("permissions", "PATCH", f"/internal/companies/{company_id}",
                                    caller=current_caller(request), json=_body(data), request_id=request_id(request))
        return msgspec.convert(reply, CompanyOut)

    @post("/companies/{company_id:str}/termination", opt={"roles": OPERATOR}, status_code=200,
          summary="Terminate a company: every grant of its users is revoked")
    async def terminate_company(self, company_id: FromPath[str], services: NamedDependency[Services],
                                request: Request[Any, Any, Any]) -> TerminationOut:
        reply = await services.call("permissions", "POST", f"/internal/companies/{company_id}/termination",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, TerminationOut)

    @post("/permission-requests/{request_id_:str}/accept", opt={"roles": OPERATOR}, status_code=200,
          summary="Accept a submitted request (受付完了)")
    async def accept(self, request_id_: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> RequestOut:
        reply = await services.call("permissions", "POST", f"/internal/requests/{request_id_}/accept",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, RequestOut)

    @post("/permission-requests/{request_id_:str}/cancel", opt={"roles": OPERATOR}, status_code=200,
          summary="Cancel a request after contacting the admin (申請取消)")
    async def cancel(self, request_id_: FromPath[str], data: JSONBody[CancelIn], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> RequestOut:
        reply = await services.call("permissions", "POST", f"/internal/requests/{request_id_}/cancel",
                                    caller=current_caller(request), json=_body(data), request_id=request_id(request))
        return msgspec.convert(reply, RequestOut)

    @post("/permission-requests/{request_id_:str}/systems/{system:str}/completion", opt={"roles": OPERATOR},
          status_code=200, summary="Record a completion the target system did not acknowledge")
    async def complete(self, request_id_: FromPath[str], system: FromPath[str], services: NamedDependency[Services],
                       request: Request[Any, Any, Any]) -> RequestOut:
        reply = await services.call("permissions", "POST",
                                    f"/internal/requests/{request_id_}/systems/{system}/completion",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, RequestOut)

    @post("/permission-requests/{request_id_:str}/systems/{system:str}/retry", opt={"roles": OPERATOR},
          status_code=200, summary="Send a failed grant command again")
    async def retry(self, request_id_: FromPath[str], system: FromPath[str], services: NamedDependency[Services],
                    request: Request[Any, Any, Any]) -> RequestOut:
        reply = await services.call("permissions", "POST", f"/internal/requests/{request_id_}/systems/{system}/retry",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, RequestOut)

    @post("/permission-batches", opt={"roles": OPERATOR}, status_code=200,
          summary="Run the batch for a batch date (also runs by itself on the date)")
    async def run_batch(self, data: JSONBody[BatchIn], services: NamedDependency[Services],
                        request: Request[Any, Any, Any]) -> BatchOut:
        reply = await services.call("permissions", "POST", "/internal/batches", caller=current_caller(request),
                                    json=_body(data), request_id=request_id(request))
        return msgspec.convert(reply, BatchOut)

    @get("/grant-deliveries", opt={"roles": OPERATOR}, summary="Failed or overdue grant commands")
    async def deliveries(self, services: NamedDependency[Services], request: Request[Any, Any, Any],
                         which: Annotated[Literal["failed", "overdue"], QueryParameter(name="state")] = "failed",
                         ) -> list[GrantDeliveryOut]:
        reply = await services.call("permissions", "GET", "/internal/deliveries", caller=current_caller(request),
                                    params={"which": which}, request_id=request_id(request))
        return msgspec.convert(reply, list[GrantDeliveryOut])
