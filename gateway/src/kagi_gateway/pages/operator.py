"""託送受付センター (the operator): the acceptance queue with 受付 / 申請取消 (with its reason), the batch run for a
date, failed and overdue grant deliveries with 再送 / 完了の記録, unlock requests, the audit ledger with its chain
verification and the companies. Every answer and rule is the services', reached through the JSON API's handlers;
every post here is audited by the gateway like the API's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from kagi_gateway.controllers.audit import AuditController
from kagi_gateway.controllers.lifecycle import STAFF, LifecycleOperatorController
from kagi_gateway.controllers.permissions import PermissionOperatorController, PermissionRequestController
from kagi_gateway.pages.console import act, confirm_page, console_page, tell
from kagi_gateway.pages.forms import Refusal, Refused, body_of, form_of, operate, operate_form, see_other
from kagi_gateway.pages.requests import request_detail, request_list
from kagi_gateway.services import Services
from kagi_shared.contracts.lifecycle import UnlockDecisionIn
from kagi_shared.contracts.permissions import BatchIn, CancelIn, CompanyChangeIn, CompanyIn, CompanyOut

OPERATOR = ("operator",)
HOME = "/operator"
UNLOCK_LABELS = {"pending": "未対応", "approved": "解除済", "rejected": "却下", "refused": "解除不可"}
ROLE_LABELS = {"gas_retailer": "ガス小売事業者", "consignment_requester": "託送供給依頼者",
               "manufacturer": "製造事業者"}


def _done(request: Request[Any, Any, Any], text: str, target: str, refused: bool = False) -> Redirect:
    tell(request, text, refused)
    return see_other(target)


def _juju_limit(text: str) -> int | str:
    """The form's JUJU limit as the API's number (anything else is refused at the field by the API's rule)."""
    limit = text.strip()
    return int(limit) if limit.isascii() and limit.isdigit() else limit


def _admin_changes(values: dict[str, str], company: CompanyOut) -> dict[str, Any]:
    """The admin fields of the form that differ from the company's: only those are sent (an unchanged admin is
    no change)."""
    body: dict[str, Any] = {}
    primary = {"name": values.get("primaryName", ""), "email": values.get("primaryEmail", "")}
    if (primary["name"], primary["email"].lower()) != (company.primary_admin.name,
                                                        company.primary_admin.email.lower()):
        body["primaryAdmin"] = primary
    if values.get("removeSecondary") == "on":
        if company.secondary_admin is not None:
            body["removeSecondaryAdmin"] = True
    elif values.get("secondaryEmail") or values.get("secondaryName"):
        secondary = {"name": values.get("secondaryName", ""), "email": values.get("secondaryEmail", "")}
        held = company.secondary_admin
        if held is None or (secondary["name"], secondary["email"].lower()) != (held.name, held.email.lower()):
            body["secondaryAdmin"] = secondary
    return body


def _profile_changes(values: dict[str, str], roles: list[str], company: CompanyOut) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if values.get("name", "") != company.name:
        body["name"] = values.get("name", "")
    if sorted(roles) != sorted(company.roles):
        body["roles"] = roles
    contractors = [c.strip() for c in values.get("contractors", "").splitlines() if c.strip()]
    if contractors != company.contractors:
        body["contractors"] = contractors
    if values.get("jujuMaxUsers", "").strip():
        limit = _juju_limit(values["jujuMaxUsers"])
        if limit != company.juju_max_users:
            body["jujuMaxUsers"] = limit
    return body


def _admin_line(admin: Any) -> str:
    return f"{admin.name}（{admin.email}）" if admin else "なし"


def _cancel_page(request: Request[Any, Any, Any], request_id_: str, refusal: Refusal | None = None) -> Template:
    return confirm_page(request, "申請取消",
                        "システム窓口責任者に連絡のうえ、この申請を取り消します。取り消した申請は元に戻せません。",
                        f"{HOME}/requests/{request_id_}/cancel", "申請を取り消す", f"{HOME}/requests/{request_id_}",
                        reason="取消理由", refusal=refusal)


class OperatorPages(Controller):
    path = HOME
    include_in_schema = False

    @get("/", opt={"roles": OPERATOR})
    async def queue(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        """受付待ち: new requests waiting for acceptance, oldest first, and the batch run."""
        waiting = await operate(PermissionRequestController.search, request, services, status="submitted",
                                user_id=None, company_id=None)
        companies = {c.company_id: c.name for c in
                     await operate(PermissionOperatorController.companies, request, services)}
        return console_page("operator_queue.html", request, requests=sorted(waiting, key=lambda r: r.submitted_at),
                            companies=companies)

    # -- 申請 ------------------------------------------------------------------------------------------
    @get("/requests", opt={"roles": OPERATOR})
    async def search(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     status: Annotated[str | None, QueryParameter(name="status", max_length=32)] = None,
                     user_id: Annotated[str | None, QueryParameter(name="userId", max_length=254)] = None,
                     company_id: Annotated[str | None, QueryParameter(name="companyId", max_length=64)] = None,
                     ) -> Template:
        return await request_list(request, services, HOME, status, user_id, company_id)

    @get("/requests/{request_id_:str}", opt={"roles": OPERATOR})
    async def view(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                   request_id_: FromPath[str]) -> Template:
        return await request_detail(request, services, HOME, request_id_, operator=True)

    @post("/requests/{request_id_:str}/accept", opt={"roles": OPERATOR}, status_code=303)
    async def accept(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     request_id_: FromPath[str]) -> Redirect:
        return await act(PermissionOperatorController.accept, request, services, request_id_=request_id_, back=HOME,
                         done=lambda accepted: f"{accepted.user_id} の申請を受付しました"
                                               f"（バッチ処理日 {accepted.batch_date:%Y/%m/%d}）。")

    @get("/requests/{request_id_:str}/cancel", opt={"roles": OPERATOR})
    async def cancel_form(self, request: Request[Any, Any, Any], request_id_: FromPath[str]) -> Template:
        return _cancel_page(request, request_id_)

    @post("/requests/{request_id_:str}/cancel", opt={"roles": OPERATOR}, status_code=303)
    async def cancel(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     request_id_: FromPath[str]) -> Any:
        try:
            await operate_form(PermissionOperatorController.cancel, request, services, CancelIn,
                               request_id_=request_id_)
        except Refused as refused:
            if refused.refusal.fields:
                return _cancel_page(request, request_id_, refused.refusal)
            return _done(request, refused.refusal.message, f"{HOME}/requests/{request_id_}", refused=True)
        return _done(request, "申請を取り消しました。", f"{HOME}/requests/{request_id_}")

    @post("/requests/{request_id_:str}/systems/{system:str}/retry", opt={"roles": OPERATOR}, status_code=303)
    async def retry(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                    request_id_: FromPath[str], system: FromPath[str]) -> Redirect:
        return await act(PermissionOperatorController.retry, request, services, request_id_=request_id_,
                         system=system, back=f"{HOME}/requests/{request_id_}",
                         done=f"{system} への指示を再送しました。")

    @get("/requests/{request_id_:str}/systems/{system:str}/complete", opt={"roles": OPERATOR})
    async def complete_form(self, request: Request[Any, Any, Any], request_id_: FromPath[str],
                            system: FromPath[str]) -> Template:
        return confirm_page(request, "完了の記録", f"{system} で設定が済んだことを確認しましたか。"
                            f"完了を記録すると、この申請の {system} は「済」になります。",
                            f"{HOME}/requests/{request_id_}/systems/{system}/complete", "完了を記録する",
                            f"{HOME}/requests/{request_id_}")

    @post("/requests/{request_id_:str}/systems/{system:str}/complete", opt={"roles": OPERATOR}, status_code=303)
    async def complete(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                       request_id_: FromPath[str], system: FromPath[str]) -> Redirect:
        return await act(PermissionOperatorController.complete, request, services, request_id_=request_id_,
                         system=system, back=f"{HOME}/requests/{request_id_}", done=f"{system} の完了を記録しました。")

    # -- バッチ -------------------------------------------------------------------------------------------
    @post("/batches", opt={"roles": OPERATOR}, status_code=303)
    async def run_batch(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Redirect:
        try:
            ran = await operate_form(PermissionOperatorController.run_batch, request, services, BatchIn)
        except Refused as refused:
            reason = refused.refusal.fields.get("batchDate") or refused.refusal.message
            return _done(request, reason, HOME, refused=True)
        return _done(request, f"{ran.batch_date:%Y/%m/%d} のバッチを実行しました（申請 {ran.requests} 件、"
                     f"指示 {ran.commands} 件）。", HOME)

    # -- 反映の失敗・遅延 --------------------------------------------------------------------------------
    @get("/deliveries", opt={"roles": OPERATOR})
    async def deliveries(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                         which: Annotated[Literal["failed", "overdue"], QueryParameter(name="state")] = "failed",
                         ) -> Template:
        found = await operate(PermissionOperatorController.deliveries, request, services, which=which)
        return console_page("operator_deliveries.html", request, deliveries=found, state=which)

    # -- ロック解除依頼 -----------------------------------------------------------------------------------
    @get("/unlock-requests", opt={"roles": STAFF})
    async def unlock_requests(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                              status: Annotated[Literal["pending", "approved", "rejected", "refused"] | None,
                                                QueryParameter(name="status")] = "pending") -> Template:
        found = await operate(LifecycleOperatorController.unlock_requests, request, services, status=status)
        return console_page("operator_unlocks.html", request, unlocks=found, status=status or "",
                            labels=UNLOCK_LABELS)

    @post("/unlock-requests/{unlock_id:str}/approve", opt={"roles": STAFF}, status_code=303)
    async def approve(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                      unlock_id: FromPath[str]) -> Redirect:
        return await self._unlock(request, services, unlock_id, LifecycleOperatorController.approve,
                                  "ロックを解除しました。")

    @get("/unlock-requests/{unlock_id:str}/reject", opt={"roles": STAFF})
    async def reject_form(self, request: Request[Any, Any, Any], unlock_id: FromPath[str]) -> Template:
        return confirm_page(request, "ロック解除依頼の却下", "このロック解除依頼を却下します。",
                            f"{HOME}/unlock-requests/{unlock_id}/reject", "却下する", f"{HOME}/unlock-requests",
                            reason="却下の理由（依頼者へのメモ）")

    @post("/unlock-requests/{unlock_id:str}/reject", opt={"roles": STAFF}, status_code=303)
    async def reject(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     unlock_id: FromPath[str]) -> Redirect:
        return await self._unlock(request, services, unlock_id, LifecycleOperatorController.reject,
                                  "ロック解除依頼を却下しました。")

    async def _unlock(self, request: Request[Any, Any, Any], services: Services, unlock_id: str, handler: Any,
                      done: str) -> Redirect:
        values = await form_of(request)
        return await act(handler, request, services, {"note": values.get("reason") or None}, UnlockDecisionIn,
                         unlock_id=unlock_id, back=f"{HOME}/unlock-requests", done=done)

    # -- 監査ログ -----------------------------------------------------------------------------------------
    @get("/audit", opt={"roles": OPERATOR})
    async def audit(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                    actor_id: Annotated[str | None, QueryParameter(name="actorId", max_length=64)] = None,
                    verify: Annotated[bool, QueryParameter(name="verify")] = False) -> Template:
        entries = await operate(AuditController.entries, request, services, actor_id=actor_id or None, limit=100)
        verdict = await operate(AuditController.verify, request, services) if verify else None
        return console_page("operator_audit.html", request, entries=entries, verdict=verdict,
                            actor_id=actor_id or "")

    # -- 事業者 --------------------------------------------------------------------------------------------
    @get("/companies", opt={"roles": OPERATOR})
    async def companies(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        found = await operate(PermissionOperatorController.companies, request, services)
        return console_page("operator_companies.html", request, companies=found, values={})

    @post("/companies", opt={"roles": OPERATOR}, status_code=303)
    async def register_company(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        """事業者の登録: the company, its roles and its primary (and secondary) システム窓口責任者."""
        form = await request.form()
        values = await form_of(request)
        body: dict[str, Any] = {
            "name": values.get("name", ""), "roles": [r for r in form.getall("roles") if isinstance(r, str)],
            "primaryAdmin": {"name": values.get("primaryName", ""), "email": values.get("primaryEmail", "")},
            "contractors": [c.strip() for c in values.get("contractors", "").splitlines() if c.strip()]}
        if values.get("secondaryEmail"):
            body["secondaryAdmin"] = {"name": values.get("secondaryName", ""), "email": values["secondaryEmail"]}
        if values.get("jujuMaxUsers"):
            body["jujuMaxUsers"] = _juju_limit(values["jujuMaxUsers"])
        try:
            registered = await operate(PermissionOperatorController.register_company, request, services,
                                       body_of(body, CompanyIn))
        except Refused as refused:
            found = await operate(PermissionOperatorController.companies, request, services)
            return console_page("operator_companies.html", request, companies=found, values=values,
                                refusal=refused.refusal)
        return _done(request, f"{registered.name} を登録しました。",
                     f"{HOME}/companies")

    @get("/companies/{company_id:str}", opt={"roles": OPERATOR})
    async def company(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                      company_id: FromPath[str]) -> Template:
        """One company: its registration, システム窓口責任者の変更 (seed 3-2) and 利用終了."""
        shown = await operate(PermissionOperatorController.company, request, services, company_id=company_id)
        return self._company_page(request, shown)

    @staticmethod
    def _company_page(request: Request[Any, Any, Any], company: CompanyOut, values: dict[str, str] | None = None,
                      refusal: Refusal | None = None) -> Template:
        current = {"name": company.name, "contractors": "\n".join(company.contractors),
                   "jujuMaxUsers": "" if company.juju_max_users is None else str(company.juju_max_users),
                   "primaryName": company.primary_admin.name, "primaryEmail": company.primary_admin.email,
                   "secondaryName": company.secondary_admin.name if company.secondary_admin else "",
                   "secondaryEmail": company.secondary_admin.email if company.secondary_admin else ""}
        return console_page("operator_company.html", request, company=company, values=current | (values or {}),
                            role_labels=ROLE_LABELS, refusal=refusal)

    @post("/companies/{company_id:str}/admins", opt={"roles": OPERATOR}, status_code=200)
    async def change_admins(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                            company_id: FromPath[str]) -> Template | Redirect:
        """システム窓口責任者の変更: the first post shows who leaves and who comes (the leaving admin loses the
        permission-management system, the new one gets an ID; no user's grants change); the second files it."""
        values = await form_of(request)
        shown = await operate(PermissionOperatorController.company, request, services, company_id=company_id)
        try:
            change = body_of(_admin_changes(values, shown), CompanyChangeIn)
            if values.get("confirmed") != "yes":
                if change == CompanyChangeIn():
                    raise Refused(Refusal(400, "company.no_change", "変更する項目を指定してください。"))
                return self._confirm_admins(request, shown, change, values)
            changed = await operate(PermissionOperatorController.change_company, request, services, change,
                                    company_id=company_id)
        except Refused as refused:
            return self._company_page(request, shown, values, refused.refusal)
        return _done(request, f"{changed.name} のシステム窓口責任者を変更しました。",
                     f"{HOME}/companies/{company_id}")

    @staticmethod
    def _confirm_admins(request: Request[Any, Any, Any], company: CompanyOut, change: CompanyChangeIn,
                        values: dict[str, str]) -> Template:
        lines = []
        if change.primary_admin is not None:
            lines.append(f"（正）{_admin_line(company.primary_admin)} → {_admin_line(change.primary_admin)}")
        if change.secondary_admin is not None or change.remove_secondary_admin:
            lines.append(f"（副）{_admin_line(company.secondary_admin)} → {_admin_line(change.secondary_admin)}")
        question = (f"{company.name} のシステム窓口責任者を変更します。" + " ／ ".join(lines) +
                    "。外れる方の「システム利用権限管理システム」の利用権限は抹消され、新しい方にIDが発行されます。"
                    "利用者の利用権限は変わりません。")
        return confirm_page(request, "システム窓口責任者の変更", question,
                            f"{HOME}/companies/{company.company_id}/admins", "変更する",
                            f"{HOME}/companies/{company.company_id}", hidden=values | {"confirmed": "yes"})

    @post("/companies/{company_id:str}", opt={"roles": OPERATOR}, status_code=303)
    async def change_profile(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                             company_id: FromPath[str]) -> Any:
        """登録内容の変更 (seed 3-2): name, roles, contractors and the JUJU limit; no user's grants change."""
        form = await request.form()
        values = await form_of(request)
        shown = await operate(PermissionOperatorController.company, request, services, company_id=company_id)
        roles = [r for r in form.getall("roles") if isinstance(r, str)]
        try:
            changed = await operate(PermissionOperatorController.change_company, request, services,
                                    body_of(_profile_changes(values, roles, shown), CompanyChangeIn),
                                    company_id=company_id)
        except Refused as refused:
            return self._company_page(request, shown, values, refused.refusal)
        return _done(request, f"{changed.name} の登録内容を変更しました。", f"{HOME}/companies/{company_id}")

    @get("/companies/{company_id:str}/termination", opt={"roles": OPERATOR})
    async def termination_form(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                               company_id: FromPath[str]) -> Template:
        shown = await operate(PermissionOperatorController.company, request, services, company_id=company_id)
        return confirm_page(request, "利用終了", f"{shown.name} の利用を終了します。この事業者の利用者すべての"
                            "利用権限が抹消され、処理中の申請は取り消されます。元に戻すことはできません。",
                            f"{HOME}/companies/{company_id}/termination", "利用を終了する",
                            f"{HOME}/companies/{company_id}")

    @post("/companies/{company_id:str}/termination", opt={"roles": OPERATOR}, status_code=303)
    async def terminate(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                        company_id: FromPath[str]) -> Redirect:
        return await act(PermissionOperatorController.terminate_company, request, services, company_id=company_id,
                         back=f"{HOME}/companies/{company_id}",
                         done=lambda ended: f"{ended.company.name} の利用を終了しました"
                                            f"（利用権限を抹消した利用者 {ended.revoked_users} 名）。")
