"""Permission provisioning (SPEC §3): schedule preview, catalogue, requests (company admins), companies and the
request workflow (operators). Every answer comes from the permissions service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from kagi_gateway.deps import PUBLIC, Call
from kagi_shared.contracts import permissions as pm

ADMIN = ("company_admin",)
OPERATOR = ("operator",)
ADMIN_OR_OPERATOR = ("company_admin", "operator")


class PermissionRequestController(Controller):
    """Company admins (システム窓口責任者) file and follow requests; anyone may preview the schedule."""

    path = "/api/v1"
    tags = ("permissions",)

    @get("/permission-requests/schedule", opt={"roles": PUBLIC},
         summary="Projected acceptance, batch and usable-from dates for a submission date")
    async def schedule(self, call: NamedDependency[Call],
                       submitted_on: Annotated[str, QueryParameter(name="submittedOn", max_length=32)],
                       ) -> pm.ScheduleOut:
        return await call.permissions.schedule(submitted_on, rid=call.rid)

    @get("/permissions/catalogue", opt={"roles": ADMIN_OR_OPERATOR},
         summary="Target systems, permission codes and the TAXIS/LOACUS function matrices")
    async def catalogue(self, call: NamedDependency[Call]) -> dict[str, Any]:
        return await call.permissions.catalogue(call.caller, rid=call.rid)

    @get("/company", opt={"roles": ADMIN}, summary="The admin's own company")
    async def my_company(self, call: NamedDependency[Call]) -> pm.CompanyOut:
        return await call.permissions.my_company(call.caller, rid=call.rid)

    @post("/permission-requests", opt={"roles": ADMIN}, status_code=201,
          summary="File a new (設定), change (変更) or revoke (抹消) request")
    async def submit(self, data: JSONBody[pm.RequestIn], call: NamedDependency[Call]) -> pm.RequestOut:
        return await call.permissions.submit(call.caller, data, rid=call.rid)

    @get("/permission-requests", opt={"roles": ADMIN_OR_OPERATOR}, summary="Search requests and their status")
    async def search(self, call: NamedDependency[Call],
                     status: Annotated[Literal["submitted", "accepted", "cancelled", "in_progress", "complete"] | None,
                                       QueryParameter(name="status")] = None,
                     user_id: Annotated[str | None, QueryParameter(name="userId", max_length=254)] = None,
                     company_id: Annotated[str | None, QueryParameter(name="companyId", max_length=64)] = None,
                     ) -> list[pm.RequestOut]:
        return await call.permissions.search(call.caller, status=status, user_id=user_id, company_id=company_id,
                                             rid=call.rid)

    @get("/permission-requests/{request_id_:str}", opt={"roles": ADMIN_OR_OPERATOR}, summary="One request")
    async def view(self, request_id_: FromPath[str], call: NamedDependency[Call]) -> pm.RequestOut:
        return await call.permissions.request(call.caller, request_id_, rid=call.rid)

    @get("/permission-request-drafts", opt={"roles": ADMIN},
         summary="Prefilled revoke requests for purged IDs, waiting for the admin's confirmation")
    async def drafts(self, call: NamedDependency[Call]) -> list[pm.DraftOut]:
        return await call.permissions.drafts(call.caller, rid=call.rid)

    @post("/permission-request-drafts/{draft_id:str}/confirm", opt={"roles": ADMIN}, status_code=201,
          summary="File the prefilled revoke request of a purged ID")
    async def confirm_draft(self, draft_id: FromPath[str], call: NamedDependency[Call]) -> pm.RequestOut:
        return await call.permissions.confirm_draft(call.caller, draft_id, rid=call.rid)


class AccessReviewController(Controller):
    """The admin's access review (棚卸): every user with permissions and last login; keep or revoke each."""

    path = "/api/v1"
    tags = ("access-review",)

    @get("/company/users", opt={"roles": ADMIN}, summary="Every user of the company with permissions and last login")
    async def users(self, call: NamedDependency[Call]) -> list[pm.ReviewUserOut]:
        return await call.permissions.users(call.caller, rid=call.rid)

    @post("/access-reviews", opt={"roles": ADMIN}, status_code=201, summary="Start a review campaign")
    async def start(self, call: NamedDependency[Call]) -> pm.ReviewOut:
        return await call.permissions.start_review(call.caller, rid=call.rid)

    @get("/access-reviews", opt={"roles": ADMIN}, summary="The company's review campaigns")
    async def campaigns(self, call: NamedDependency[Call]) -> list[pm.ReviewOut]:
        return await call.permissions.reviews(call.caller, rid=call.rid)

    @get("/access-reviews/{review_id:str}", opt={"roles": ADMIN}, summary="One review campaign")
    async def campaign(self, review_id: FromPath[str], call: NamedDependency[Call]) -> pm.ReviewOut:
        return await call.permissions.review(call.caller, review_id, rid=call.rid)

    @post("/access-reviews/{review_id:str}/decisions", opt={"roles": ADMIN}, status_code=200,
          summary="Keep or revoke one user (a revoke files a revoke request)")
    async def decide(self, review_id: FromPath[str], data: JSONBody[pm.ReviewDecisionIn],
                     call: NamedDependency[Call]) -> pm.ReviewOut:
        return await call.permissions.decide(call.caller, review_id, data, rid=call.rid)

    @get("/access-reviews/{review_id:str}/report.csv", opt={"roles": ADMIN}, summary="The campaign report as CSV",
         media_type="text/csv")
    async def report(self, review_id: FromPath[str], call: NamedDependency[Call]) -> Response[str]:
        report = await call.permissions.report(call.caller, review_id, rid=call.rid)
        return Response(content=report.csv, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{report.filename}"'})


class PermissionOperatorController(Controller):
    """The operator (託送受付センター): companies, acceptance, the batch, completions and retries."""

    path = "/api/v1/operator"
    tags = ("permissions-operator",)

    @post("/companies", opt={"roles": OPERATOR}, status_code=201, summary="Register a company with its admins")
    async def register_company(self, data: JSONBody[pm.CompanyIn], call: NamedDependency[Call]) -> pm.CompanyOut:
        return await call.permissions.register_company(call.caller, data, rid=call.rid)

    @get("/companies", opt={"roles": OPERATOR}, summary="Every company")
    async def companies(self, call: NamedDependency[Call]) -> list[pm.CompanyOut]:
        return await call.permissions.companies(call.caller, rid=call.rid)

    @get("/companies/{company_id:str}", opt={"roles": OPERATOR}, summary="One company")
    async def company(self, company_id: FromPath[str], call: NamedDependency[Call]) -> pm.CompanyOut:
        return await call.permissions.company(call.caller, company_id, rid=call.rid)

    @patch("/companies/{company_id:str}", opt={"roles": OPERATOR},
           summary="Change a company (an admin change issues the new admin's ID; user grants stay)")
    async def change_company(self, company_id: FromPath[str], data: JSONBody[pm.CompanyChangeIn],
                             call: NamedDependency[Call]) -> pm.CompanyOut:
        return await call.permissions.change_company(call.caller, company_id, data, rid=call.rid)

    @post("/companies/{company_id:str}/termination", opt={"roles": OPERATOR}, status_code=200,
          summary="Terminate a company: every grant of its users is revoked")
    async def terminate_company(self, company_id: FromPath[str], call: NamedDependency[Call]) -> pm.TerminationOut:
        return await call.permissions.terminate_company(call.caller, company_id, rid=call.rid)

    @post("/permission-requests/{request_id_:str}/accept", opt={"roles": OPERATOR}, status_code=200,
          summary="Accept a submitted request (受付完了)")
    async def accept(self, request_id_: FromPath[str], call: NamedDependency[Call]) -> pm.RequestOut:
        return await call.permissions.accept(call.caller, request_id_, rid=call.rid)

    @post("/permission-requests/{request_id_:str}/cancel", opt={"roles": OPERATOR}, status_code=200,
          summary="Cancel a request after contacting the admin (申請取消)")
    async def cancel(self, request_id_: FromPath[str], data: JSONBody[pm.CancelIn],
                     call: NamedDependency[Call]) -> pm.RequestOut:
        return await call.permissions.cancel(call.caller, request_id_, data, rid=call.rid)

    @post("/permission-requests/{request_id_:str}/systems/{system:str}/completion", opt={"roles": OPERATOR},
          status_code=200, summary="Record a completion the target system did not acknowledge")
    async def complete(self, request_id_: FromPath[str], system: FromPath[str],
                       call: NamedDependency[Call]) -> pm.RequestOut:
        return await call.permissions.complete(call.caller, request_id_, system, rid=call.rid)

    @post("/permission-requests/{request_id_:str}/systems/{system:str}/retry", opt={"roles": OPERATOR},
          status_code=200, summary="Send a failed grant command again")
    async def retry(self, request_id_: FromPath[str], system: FromPath[str],
                    call: NamedDependency[Call]) -> pm.RequestOut:
        return await call.permissions.retry(call.caller, request_id_, system, rid=call.rid)

    @post("/permission-batches", opt={"roles": OPERATOR}, status_code=200,
          summary="Run the batch for a batch date (also runs by itself on the date)")
    async def run_batch(self, data: JSONBody[pm.BatchIn], call: NamedDependency[Call]) -> pm.BatchOut:
        return await call.permissions.run_batch(call.caller, data, rid=call.rid)

    @get("/grant-deliveries", opt={"roles": OPERATOR}, summary="Failed or overdue grant commands")
    async def deliveries(self, call: NamedDependency[Call],
                         which: Annotated[Literal["failed", "overdue"], QueryParameter(name="state")] = "failed",
                         ) -> list[pm.GrantDeliveryOut]:
        return await call.permissions.deliveries(call.caller, which, rid=call.rid)
