"""Permissions' internal API: schedule, catalogue, companies (operator), requests (admin and operator)."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from litestar import Request, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from kagi_permissions.bootstrap import NAME, Permissions, bootstrap
from kagi_permissions.domain import requests as rules
from kagi_permissions.domain.catalogue import catalogue_data
from kagi_permissions.domain.companies import Admin
from kagi_permissions.domain.timing import schedule
from kagi_permissions.entrypoints.replies import (
    company_out,
    my_permissions_out,
    request_out,
    review_out,
    review_user_out,
    schedule_out,
)
from kagi_permissions.service.companies import CompanyInput
from kagi_permissions.service.requests import RequestInput
from kagi_shared.contracts.permissions import (
    BatchIn,
    BatchOut,
    CancelIn,
    CompanyChangeIn,
    CompanyIn,
    CompanyOut,
    DraftOut,
    GrantDeliveryOut,
    IpAllowlistOut,
    MyPermissionsOut,
    ReportOut,
    RequestIn,
    RequestOut,
    ReviewDecisionIn,
    ReviewOut,
    ReviewUserOut,
    ScheduleOut,
    TerminationOut,
)
from kagi_shared.metrics import PERMISSION_REQUESTS, PERMISSION_SYSTEMS, on_scrape, set_counts
from kagi_shared.problems import FieldError, Problem
from kagi_shared.service_api import (
    Caller,
    RunningService,
    ServiceApi,
    api_entrypoints,
    caller_as,
    caller_of,
    correlation_of,
)
from kagi_shared.settings import Settings


def parse_day(value: str | None, field: str) -> date:
    """An ISO date from a query string; ``2019-02-30`` is a 400 naming the field."""
    if not value:
        raise Problem(400, "request.invalid", "入力内容に誤りがあります。",
                      errors=[FieldError(field, "日付を YYYY-MM-DD 形式で指定してください。")])
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise Problem(400, "request.invalid", "入力内容に誤りがあります。",
                      errors=[FieldError(field, f"{value} は存在しない日付か、YYYY-MM-DD 形式ではありません。")],
                      ) from None


def _admin(a: Any) -> Admin:
    return Admin(name=a.name, email=a.email.strip())


def service_api(settings: Settings, permissions: Permissions | None = None) -> ServiceApi:
    async def request_gauges() -> None:
        requests, systems = await app().repo.counts_by_state()
        set_counts(PERMISSION_REQUESTS, requests)
        set_counts(PERMISSION_SYSTEMS, systems)

    app = RunningService(permissions, lambda: bootstrap(settings), on_start=lambda: on_scrape(
        "permissions.requests", request_gauges, settings.http.metrics_refresh_s))

    def operator(request: Request[Any, Any, Any]) -> None:
        caller_as(request, "operator")

    # -- public --------------------------------------------------------------------------------
    @get("/internal/schedule")
    async def schedule_preview(submitted_on: FromQuery[str | None] = None) -> ScheduleOut:
        return schedule_out(schedule(app().calendar, parse_day(submitted_on, "submittedOn")))

    @get("/internal/catalogue")
    async def catalogue(request: Request[Any, Any, Any]) -> dict[str, object]:
        """The catalogue; for a company admin also how many of the company's JUJU places are taken now, so the
        request form can warn before a JUJU request is refused."""
        data = catalogue_data()
        caller = caller_of(request) if request.headers.get("x-kagi-account-id") else None
        if caller is not None and caller.has("company_admin"):
            try:
                limit, holders = await app().requests.juju_places(await app().requests.company_of(caller))
            except Problem:  # not (or no longer) an admin of an active company: the plain catalogue
                return data
            data["jujuUsage"] = {"limit": limit, "used": len(holders), "remaining": max(limit - len(holders), 0)}
        return data

    @get("/internal/ip-allowlist")
    async def ip_allowlist() -> IpAllowlistOut:
        """Static global addresses of active companies, for the gateway's access-from-abroad rule (seed 2-8)."""
        return IpAllowlistOut(addresses=await app().repo.ip_allowlist())

    # -- companies (operator) -----------------------------------------------------------------
    @post("/internal/companies", status_code=201)
    async def register_company(data: JSONBody[CompanyIn], request: Request[Any, Any, Any]) -> CompanyOut:
        operator(request)
        company = await app().companies.register(CompanyInput(
            name=data.name, roles=list(data.roles), primary_admin=_admin(data.primary_admin),
            secondary_admin=_admin(data.secondary_admin) if data.secondary_admin else None,
            contractors=data.contractors, ip_allowlist=data.ip_allowlist, juju_max_users=data.juju_max_users))
        return company_out(company)

    @get("/internal/companies")
    async def list_companies(request: Request[Any, Any, Any]) -> list[CompanyOut]:
        operator(request)
        return [company_out(c) for c in await app().repo.list_companies()]

    @get("/internal/companies/{company_id:str}")
    async def get_company(company_id: FromPath[str], request: Request[Any, Any, Any]) -> CompanyOut:
        operator(request)
        return company_out(await app().companies.get(company_id))

    @patch("/internal/companies/{company_id:str}")
    async def change_company(company_id: FromPath[str], data: JSONBody[CompanyChangeIn],
                             request: Request[Any, Any, Any]) -> CompanyOut:
        operator(request)
        changes: dict[str, object] = {}
        for name in ("name", "roles", "contractors", "ip_allowlist", "juju_max_users"):
            value = getattr(data, name)
            if value is not None:
                changes[name] = value
        if data.primary_admin is not None:
            changes["primary_admin"] = _admin(data.primary_admin)
        if data.secondary_admin is not None:
            changes["secondary_admin"] = _admin(data.secondary_admin)
        elif data.remove_secondary_admin:
            changes["secondary_admin"] = None
        if not changes:
            raise Problem(400, "company.no_change", "変更する項目を指定してください。")
        return company_out(await app().companies.change(company_id, changes))

    @post("/internal/companies/{company_id:str}/termination", status_code=200)
    async def terminate_company(company_id: FromPath[str], request: Request[Any, Any, Any]) -> TerminationOut:
        operator(request)
        company, revoked = await app().companies.terminate(company_id)
        return TerminationOut(company=company_out(company), revoked_users=revoked)

    @get("/internal/me/permissions")
    async def my_permissions(request: Request[Any, Any, Any]) -> MyPermissionsOut:
        """Any caller: what its own ID holds now (a target system's SSO may read this, or the events)."""
        caller = caller_of(request)
        return my_permissions_out(caller.login_id, await app().repo.grant(rules.user_key(caller.login_id)))

    @get("/internal/my-company")
    async def my_company(request: Request[Any, Any, Any]) -> CompanyOut:
        caller = caller_as(request, "company_admin")
        return company_out(await app().requests.company_of(caller))

    # -- requests (admin) ----------------------------------------------------------------------
    @post("/internal/requests", status_code=201)
    async def submit(data: JSONBody[RequestIn], request: Request[Any, Any, Any]) -> RequestOut:
        caller = caller_as(request, "company_admin")
        filed = await app().requests.submit(caller, RequestInput(
            kind=data.kind, user_id=data.user_id, permissions={k: v for k, v in data.permissions.as_dict().items()},
            name_kanji=data.name_kanji, name_kana=data.name_kana, contractor=data.contractor, memo=data.memo),
            correlation_of(request))
        return request_out(filed)

    @get("/internal/requests")
    async def search(request: Request[Any, Any, Any], status: FromQuery[str | None] = None,
                     user_id: FromQuery[str | None] = None,
                     company_id: FromQuery[str | None] = None) -> list[RequestOut]:
        caller = caller_as(request, "company_admin", "operator")
        found = await app().requests.search(caller, status=status, user_id=user_id, company_id=company_id)
        return [request_out(r) for r in found]

    @get("/internal/requests/{request_id:str}")
    async def view(request_id: FromPath[str], request: Request[Any, Any, Any]) -> RequestOut:
        caller = caller_as(request, "company_admin", "operator")
        return request_out(await app().requests.get(caller, request_id))

    @get("/internal/drafts")
    async def drafts(request: Request[Any, Any, Any]) -> list[DraftOut]:
        caller = caller_as(request, "company_admin")
        company = await app().requests.company_of(caller)
        return [DraftOut(draft_id=d.id, user_id=d.user_id, kind=d.kind, reason=d.reason, created_at=d.created_at)
                for d in await app().repo.drafts(company.id)]

    @post("/internal/drafts/{draft_id:str}/confirm", status_code=201)
    async def confirm_draft(draft_id: FromPath[str], request: Request[Any, Any, Any]) -> RequestOut:
        caller = caller_as(request, "company_admin")
        return request_out(await app().requests.confirm_draft(caller, draft_id))

    # -- access review (admin) ------------------------------------------------------------------
    def admin(request: Request[Any, Any, Any]) -> Caller:
        return caller_as(request, "company_admin")

    @get("/internal/users")
    async def users(request: Request[Any, Any, Any]) -> list[ReviewUserOut]:
        return [review_user_out(e) for e in await app().reviews.users(admin(request))]

    @post("/internal/reviews", status_code=201)
    async def start_review(request: Request[Any, Any, Any]) -> ReviewOut:
        return review_out(await app().reviews.start(admin(request)))

    @get("/internal/reviews")
    async def list_reviews(request: Request[Any, Any, Any]) -> list[ReviewOut]:
        return [review_out(c) for c in await app().reviews.list(admin(request))]

    @get("/internal/reviews/{review_id:str}")
    async def get_review(review_id: FromPath[str], request: Request[Any, Any, Any]) -> ReviewOut:
        return review_out(await app().reviews.get(admin(request), review_id))

    @post("/internal/reviews/{review_id:str}/decisions", status_code=200)
    async def decide(review_id: FromPath[str], data: JSONBody[ReviewDecisionIn],
                     request: Request[Any, Any, Any]) -> ReviewOut:
        return review_out(await app().reviews.decide(admin(request), review_id, data.user_id, data.decision))

    @get("/internal/reviews/{review_id:str}/report")
    async def report(review_id: FromPath[str], request: Request[Any, Any, Any]) -> ReportOut:
        csv = await app().reviews.report(admin(request), review_id)
        return ReportOut(filename=f"access-review-{review_id}.csv", csv=csv)

    # -- operator workflow ---------------------------------------------------------------------
    @post("/internal/requests/{request_id:str}/accept", status_code=200)
    async def accept(request_id: FromPath[str], request: Request[Any, Any, Any]) -> RequestOut:
        operator(request)
        return request_out(await app().requests.accept(request_id))

    @post("/internal/requests/{request_id:str}/cancel", status_code=200)
    async def cancel(request_id: FromPath[str], data: JSONBody[CancelIn],
                     request: Request[Any, Any, Any]) -> RequestOut:
        operator(request)
        return request_out(await app().requests.cancel(request_id, data.reason))

    @post("/internal/requests/{request_id:str}/systems/{system:str}/completion", status_code=200)
    async def complete(request_id: FromPath[str], system: FromPath[str], request: Request[Any, Any, Any]) -> RequestOut:
        operator(request)
        return request_out(await app().requests.complete_system(request_id, system))

    @post("/internal/requests/{request_id:str}/systems/{system:str}/retry", status_code=200)
    async def retry(request_id: FromPath[str], system: FromPath[str], request: Request[Any, Any, Any]) -> RequestOut:
        operator(request)
        return request_out(await app().requests.retry(request_id, system))

    @post("/internal/batches", status_code=200)
    async def run_batch(data: JSONBody[BatchIn], request: Request[Any, Any, Any]) -> BatchOut:
        operator(request)
        result = await app().requests.run_batch(data.batch_date)
        return BatchOut(batch_date=result.batch_date, requests=result.requests, commands=result.commands)

    @get("/internal/deliveries")
    async def deliveries(request: Request[Any, Any, Any], which: FromQuery[str] = "failed") -> list[GrantDeliveryOut]:
        operator(request)
        if which not in ("failed", "overdue"):
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。",
                          errors=[FieldError("state", "failed または overdue を指定してください。")])
        return [msgspec.convert(row, GrantDeliveryOut) for row in await app().requests.deliveries(which)]

    handlers = [schedule_preview, catalogue, ip_allowlist, register_company, list_companies, get_company,
                change_company, terminate_company, my_permissions, my_company, submit, search, view, drafts,
                confirm_draft, users,
                start_review, list_reviews, get_review, decide, report, accept, cancel, complete, retry, run_batch,
                deliveries]
    return app.api(NAME, handlers)


create_app, main = api_entrypoints(NAME, service_api)


if __name__ == "__main__":
    main()
