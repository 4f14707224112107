"""《システム利用権限管理》 for the company admin (システム窓口責任者, consignment-system-guide.txt chapter 5): the
company's users with their permission per system, 設定・変更・抹消 forms built from the catalogue with the projected
dates shown before filing, the request search with 申請済/受付完了/処理完了 and 済/未済/(不要), revoke drafts for purged
IDs and the access review (棚卸) with its CSV. Every answer and every rule is the permissions service's, reached
through the JSON API's handlers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from kagi_gateway.controllers.permissions import AccessReviewController, PermissionRequestController
from kagi_gateway.pages.console import act, confirm_page, console_page, tell
from kagi_gateway.pages.forms import Refused, body_of, form_of, operate, see_other
from kagi_gateway.pages.requests import SYSTEM_COLUMNS, request_detail, request_list
from kagi_gateway.services import Services
from kagi_shared.contracts.permissions import RequestIn, ReviewDecisionIn
from kagi_shared.jst import JST

ADMIN = ("company_admin",)
HOME = "/company"
PERM = "perm-"  # the form's field per system: perm-TAXIS …
Kind = Literal["new", "change", "revoke"]
KIND_TITLES = {"new": "利用権限設定（新規）", "change": "利用権限変更", "revoke": "利用権限抹消"}


async def _catalogue(request: Request[Any, Any, Any], services: Services,
                     ) -> tuple[list[dict[str, Any]], Any, dict[str, int] | None]:
    """The systems the company may request, each with only the codes its roles allow (LOACUS codes of a role the
    company does not hold are not offered), the company, and how many of its JUJU places are taken now."""
    catalogue = await operate(PermissionRequestController.catalogue, request, services)
    company = await operate(PermissionRequestController.my_company, request, services)
    systems = []
    for system in catalogue["systems"]:
        if not system["requestable"]:
            continue
        codes = [c for c in system["codes"] if not c["requiresRole"] or c["requiresRole"] in company.roles]
        systems.append({**system, "codes": codes})
    return systems, company, catalogue.get("jujuUsage")


def _request_body(values: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {k: v for k, v in values.items() if not k.startswith(PERM)}
    if body.get("kind") != "revoke":
        body["permissions"] = {k[len(PERM):]: v for k, v in values.items() if k.startswith(PERM) and v}
    return body


async def _current(request: Request[Any, Any, Any], services: Services, user_id: str) -> Any:
    users = await operate(AccessReviewController.users, request, services)
    return next((u for u in users if u.user_id.lower() == user_id.lower()), None)


class CompanyPages(Controller):
    path = HOME
    include_in_schema = False

    @get("/", opt={"roles": ADMIN})
    async def home(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        company = await operate(PermissionRequestController.my_company, request, services)
        users = await operate(AccessReviewController.users, request, services)
        drafts = await operate(PermissionRequestController.drafts, request, services)
        return console_page("company_home.html", request, company=company, users=users, drafts=drafts,
                            columns=SYSTEM_COLUMNS)

    # -- 設定・変更・抹消 ------------------------------------------------------------------------------
    @get("/requests/new", opt={"roles": ADMIN})
    async def request_form(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                           kind: Annotated[Kind, QueryParameter(name="kind")] = "new",
                           user_id: Annotated[str | None, QueryParameter(name="userId", max_length=254)] = None,
                           ) -> Template:
        values: dict[str, str] = {"kind": kind}
        if user_id:
            values["userId"] = user_id
            current = await _current(request, services, user_id)
            if current is not None:
                values |= {"nameKanji": current.name_kanji, "nameKana": current.name_kana,
                           "contractor": current.contractor or ""}
                values |= {f"{PERM}{s}": v for s, v in current.permissions.items() if v}
        return await self._form(request, services, values)

    async def _form(self, request: Request[Any, Any, Any], services: Services, values: dict[str, str],
                    refused: Refused | None = None) -> Template:
        systems, company, juju = await _catalogue(request, services)
        kind = values.get("kind", "new")
        return console_page("company_request_form.html", request, refusal=refused.refusal if refused else None,
                            values=values, kind=kind, title=KIND_TITLES.get(kind, KIND_TITLES["new"]),
                            systems=systems, company=company, juju=juju)

    @post("/requests/edit", opt={"roles": ADMIN}, status_code=200)
    async def edit(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        """修正する: back from the preview to the form, with what was entered."""
        return await self._form(request, services, await form_of(request))

    @post("/requests/preview", opt={"roles": ADMIN}, status_code=200)
    async def preview(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        """What will be filed and when it takes effect (受付日, バッチ処理日, 利用開始日), before it is filed."""
        values = await form_of(request)
        try:
            body_of(_request_body(values), RequestIn)
        except Refused as refused:
            return await self._form(request, services, values, refused)
        today = datetime.now(JST).date().isoformat()
        schedule = await operate(PermissionRequestController.schedule, request, services, submitted_on=today)
        systems, _, _ = await _catalogue(request, services)
        labels = {s["key"]: {c["code"]: c["label"] for c in s["codes"]} for s in systems}
        current = await _current(request, services, values.get("userId", ""))
        return console_page("company_request_preview.html", request, values=values, schedule=schedule,
                            kind=values.get("kind", "new"), title="申請内容の確認", systems=systems,
                            labels=labels, current=current, perm=PERM)

    @post("/requests", opt={"roles": ADMIN}, status_code=303)
    async def submit(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        values = await form_of(request)
        try:
            filed = await operate(PermissionRequestController.submit, request, services,
                                  body_of(_request_body(values), RequestIn))
        except Refused as refused:
            return await self._form(request, services, values, refused)
        tell(request, f"{filed.kind_label}の申請を受け付けました（{filed.status_label}）。")
        return see_other(f"{HOME}/requests/{filed.request_id}")

    # -- 申請状況 --------------------------------------------------------------------------------------
    @get("/requests", opt={"roles": ADMIN})
    async def search(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     status: Annotated[str | None, QueryParameter(name="status", max_length=32)] = None,
                     user_id: Annotated[str | None, QueryParameter(name="userId", max_length=254)] = None,
                     ) -> Template:
        return await request_list(request, services, HOME, status, user_id)

    @get("/requests/{request_id_:str}", opt={"roles": ADMIN})
    async def view(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                   request_id_: FromPath[str]) -> Template:
        return await request_detail(request, services, HOME, request_id_, operator=False)

    # -- 抹消申請の下書き (purged IDs) ---------------------------------------------------------------------
    @get("/drafts/{draft_id:str}/confirm", opt={"roles": ADMIN})
    async def draft_confirm(self, request: Request[Any, Any, Any], draft_id: FromPath[str]) -> Template:
        return confirm_page(request, "抹消申請の確認", "削除されたIDの利用権限抹消を申請します。よろしいですか。",
                            f"{HOME}/drafts/{draft_id}/confirm", "抹消を申請する", HOME)

    @post("/drafts/{draft_id:str}/confirm", opt={"roles": ADMIN}, status_code=303)
    async def draft_file(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                         draft_id: FromPath[str]) -> Redirect:
        return await act(PermissionRequestController.confirm_draft, request, services, draft_id=draft_id, back=HOME,
                         done=lambda filed: f"{filed.kind_label}の申請を受け付けました（{filed.status_label}）。",
                         onward=lambda filed: f"{HOME}/requests/{filed.request_id}")

    # -- 棚卸 (access review) --------------------------------------------------------------------------
    @get("/reviews", opt={"roles": ADMIN})
    async def reviews(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        campaigns = await operate(AccessReviewController.campaigns, request, services)
        return console_page("company_reviews.html", request, campaigns=campaigns)

    @post("/reviews", opt={"roles": ADMIN}, status_code=303)
    async def start_review(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Redirect:
        return await act(AccessReviewController.start, request, services, back=f"{HOME}/reviews",
                         done="棚卸を開始しました。利用者ごとに継続か抹消かを選んでください。",
                         onward=lambda started: f"{HOME}/reviews/{started.review_id}")

    @get("/reviews/{review_id:str}", opt={"roles": ADMIN})
    async def review(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     review_id: FromPath[str]) -> Template:
        shown = await operate(AccessReviewController.campaign, request, services, review_id=review_id)
        return console_page("company_review.html", request, review=shown, columns=SYSTEM_COLUMNS)

    @post("/reviews/{review_id:str}/keep", opt={"roles": ADMIN}, status_code=303)
    async def keep(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                   review_id: FromPath[str]) -> Redirect:
        return await self._decide(request, services, review_id, "keep")

    @post("/reviews/{review_id:str}/revoke", opt={"roles": ADMIN}, status_code=200)
    async def revoke(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     review_id: FromPath[str]) -> Template | Redirect:
        """抹消 files a revoke request: the first post only asks to confirm it."""
        values = await form_of(request)
        if values.get("confirmed") != "yes":
            user = values.get("userId", "")
            return confirm_page(request, "利用権限抹消の確認",
                                f"{user} の利用権限をすべて抹消する申請を行います。よろしいですか。",
                                f"{HOME}/reviews/{review_id}/revoke", "抹消する", f"{HOME}/reviews/{review_id}",
                                hidden={"userId": values.get("userId", ""), "confirmed": "yes"})
        return await self._decide(request, services, review_id, "revoke", values)

    async def _decide(self, request: Request[Any, Any, Any], services: Services, review_id: str,
                      decision: str, values: dict[str, str] | None = None) -> Redirect:
        values = values if values is not None else await form_of(request)
        return await act(AccessReviewController.decide, request, services,
                         {"userId": values.get("userId", ""), "decision": decision}, ReviewDecisionIn,
                         review_id=review_id,
                         back=f"{HOME}/reviews/{review_id}",
                         done=f"{values.get('userId', '')} を{'継続' if decision == 'keep' else '抹消'}としました。")

    @get("/reviews/{review_id:str}/report.csv", opt={"roles": ADMIN}, media_type="text/csv")
    async def report(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     review_id: FromPath[str]) -> Response[str]:
        reply: Response[str] = await operate(AccessReviewController.report, request, services, review_id=review_id)
        return reply
