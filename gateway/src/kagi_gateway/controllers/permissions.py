"""Permission provisioning (SPEC §3): schedule preview, catalogue, requests (company admins), companies and the
request workflow (operators). Every answer comes from the permissions service."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from kagi_gateway.deps import PUBLIC, Call
from kagi_gateway.forward import ApiController, forward
from kagi_shared.contracts import permissions as pm
from kagi_shared.contracts.permissions import PermissionsClient

ADMIN = ("company_admin",)
OPERATOR = ("operator",)
ADMIN_OR_OPERATOR = ("company_admin", "operator")


class PermissionRequestController(ApiController):
    """Company admins (システム窓口責任者) file and follow requests; anyone may preview the schedule."""

    path = "/api/v1"
    tags = ("permissions",)

    @get("/permission-requests/schedule", opt={"roles": PUBLIC},
         summary="Projected acceptance, batch and usable-from dates for a submission date")
    async def schedule(self, call: NamedDependency[Call],
                       submitted_on: Annotated[str, QueryParameter(name="submittedOn", max_length=32)],
                       ) -> pm.ScheduleOut:
        return await call.permissions.schedule(submitted_on, rid=call.rid)

    catalogue = forward(get("/permissions/catalogue", opt={"roles": ADMIN_OR_OPERATOR},
                            summary="Target systems, permission codes and the TAXIS/LOACUS function matrices"),
                        PermissionsClient.catalogue)

    my_company = forward(get("/company", opt={"roles": ADMIN},
                             summary="The admin's own company"), PermissionsClient.my_company)

    submit = forward(post("/permission-requests", opt={"roles": ADMIN, "idempotent": True}, status_code=201,
                          summary="File a new (設定), change (変更) or revoke (抹消) request"),
                     PermissionsClient.submit)

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

    drafts = forward(get("/permission-request-drafts", opt={"roles": ADMIN},
                         summary="Prefilled revoke requests for purged IDs, waiting for the admin's confirmation"),
                     PermissionsClient.drafts)

    confirm_draft = forward(post("/permission-request-drafts/{draft_id:str}/confirm", opt={"roles": ADMIN},
                                 status_code=201, summary="File the prefilled revoke request of a purged ID"),
                            PermissionsClient.confirm_draft)


class AccessReviewController(ApiController):
    """The admin's access review (棚卸): every user with permissions and last login; keep or revoke each."""

    path = "/api/v1"
    tags = ("access-review",)

    users = forward(get("/company/users", opt={"roles": ADMIN},
                        summary="Every user of the company with permissions and last login"), PermissionsClient.users)

    start = forward(post("/access-reviews", opt={"roles": ADMIN}, status_code=201,
                         summary="Start a review campaign"), PermissionsClient.start_review)

    campaigns = forward(get("/access-reviews", opt={"roles": ADMIN},
                            summary="The company's review campaigns"), PermissionsClient.reviews)

    campaign = forward(get("/access-reviews/{review_id:str}", opt={"roles": ADMIN},
                           summary="One review campaign"), PermissionsClient.review)

    decide = forward(post("/access-reviews/{review_id:str}/decisions", opt={"roles": ADMIN}, status_code=200,
                          summary="Keep or revoke one user (a revoke files a revoke request)"),
                     PermissionsClient.decide)

    @get("/access-reviews/{review_id:str}/report.csv", opt={"roles": ADMIN}, summary="The campaign report as CSV",
         media_type="text/csv")
    async def report(self, review_id: FromPath[str], call: NamedDependency[Call]) -> Response[str]:
        report = await call.permissions.report(call.caller, review_id, rid=call.rid)
        return Response(content=report.csv, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{report.filename}"'})


class PermissionOperatorController(ApiController):
    """The operator (託送受付センター): companies, acceptance, the batch, completions and retries."""

    path = "/api/v1/operator"
    tags = ("permissions-operator",)

    register_company = forward(post("/companies", opt={"roles": OPERATOR}, status_code=201,
                                    summary="Register a company with its admins"), PermissionsClient.register_company)

    companies = forward(get("/companies", opt={"roles": OPERATOR},
                            summary="Every company"), PermissionsClient.companies)

    company = forward(get("/companies/{company_id:str}", opt={"roles": OPERATOR},
                          summary="One company"), PermissionsClient.company)

    change_company = forward(
        patch("/companies/{company_id:str}", opt={"roles": OPERATOR},
              summary="Change a company (an admin change issues the new admin's ID; user grants stay)"),
        PermissionsClient.change_company)

    terminate_company = forward(post("/companies/{company_id:str}/termination", opt={"roles": OPERATOR},
                                     status_code=200,
                                     summary="Terminate a company: every grant of its users is revoked"),
                                PermissionsClient.terminate_company)

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

    run_batch = forward(post("/permission-batches", opt={"roles": OPERATOR}, status_code=200,
                             summary="Run the batch for a batch date (also runs by itself on the date)"),
                        PermissionsClient.run_batch)

    @get("/grant-deliveries", opt={"roles": OPERATOR}, summary="Failed or overdue grant commands")
    async def deliveries(self, call: NamedDependency[Call],
                         which: Annotated[Literal["failed", "overdue"], QueryParameter(name="state")] = "failed",
                         ) -> list[pm.GrantDeliveryOut]:
        return await call.permissions.deliveries(call.caller, which, rid=call.rid)
