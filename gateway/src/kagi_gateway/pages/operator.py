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
from kagi_gateway.pages.console import confirm_page, console_page, tell
from kagi_gateway.pages.forms import Refusal, Refused, body_of, form_of, operate, see_other
from kagi_gateway.pages.requests import request_detail, request_list
from kagi_gateway.services import Services
from kagi_shared.contracts.lifecycle import UnlockDecisionIn
from kagi_shared.contracts.permissions import BatchIn, CancelIn, CompanyIn

OPERATOR = ("operator",)
HOME = "/operator"
UNLOCK_LABELS = {"pending": "未対応", "approved": "解除済", "rejected": "却下", "refused": "解除不可"}


def _done(request: Request[Any, Any, Any], text: str, target: str, refused: bool = False) -> Redirect:
    tell(request, text, refused)
    return see_other(target)


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
                     ) -> Template:
        return await request_list(request, services, HOME, status, user_id)

    @get("/requests/{request_id_:str}", opt={"roles": OPERATOR})
    async def view(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                   request_id_: FromPath[str]) -> Template:
        return await request_detail(request, services, HOME, request_id_, operator=True)

    @post("/requests/{request_id_:str}/accept", opt={"roles": OPERATOR}, status_code=303)
    async def accept(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     request_id_: FromPath[str]) -> Redirect:
        try:
            done = await operate(PermissionOperatorController.accept, request, services, request_id_=request_id_)
        except Refused as refused:
            return _done(request, refused.refusal.message, HOME, refused=True)
        return _done(request, f"{done.user_id} の申請を受付しました（バッチ処理日 {done.batch_date:%Y/%m/%d}）。", HOME)

    @get("/requests/{request_id_:str}/cancel", opt={"roles": OPERATOR})
    async def cancel_form(self, request: Request[Any, Any, Any], request_id_: FromPath[str]) -> Template:
        return _cancel_page(request, request_id_)

    @post("/requests/{request_id_:str}/cancel", opt={"roles": OPERATOR}, status_code=303)
    async def cancel(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     request_id_: FromPath[str]) -> Any:
        values = await form_of(request)
        try:
            await operate(PermissionOperatorController.cancel, request, services, body_of(values, CancelIn),
                          request_id_=request_id_)
        except Refused as refused:
            if refused.refusal.fields:
                return _cancel_page(request, request_id_, refused.refusal)
            return _done(request, refused.refusal.message, f"{HOME}/requests/{request_id_}", refused=True)
        return _done(request, "申請を取り消しました。", f"{HOME}/requests/{request_id_}")

    @post("/requests/{request_id_:str}/systems/{system:str}/retry", opt={"roles": OPERATOR}, status_code=303)
    async def retry(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                    request_id_: FromPath[str], system: FromPath[str]) -> Redirect:
        back = f"{HOME}/requests/{request_id_}"
        try:
            await operate(PermissionOperatorController.retry, request, services, request_id_=request_id_,
                          system=system)
        except Refused as refused:
            return _done(request, refused.refusal.message, back, refused=True)
        return _done(request, f"{system} への指示を再送しました。", back)

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
        back = f"{HOME}/requests/{request_id_}"
        try:
            await operate(PermissionOperatorController.complete, request, services, request_id_=request_id_,
                          system=system)
        except Refused as refused:
            return _done(request, refused.refusal.message, back, refused=True)
        return _done(request, f"{system} の完了を記録しました。", back)

    # -- バッチ -------------------------------------------------------------------------------------------
    @post("/batches", opt={"roles": OPERATOR}, status_code=303)
    async def run_batch(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Redirect:
        values = await form_of(request)
        try:
            ran = await operate(PermissionOperatorController.run_batch, request, services, body_of(values, BatchIn))
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
        try:
            await operate(handler, request, services, body_of({"note": values.get("reason") or None},
                                                              UnlockDecisionIn), unlock_id=unlock_id)
        except Refused as refused:
            return _done(request, refused.refusal.message, f"{HOME}/unlock-requests", refused=True)
        return _done(request, done, f"{HOME}/unlock-requests")

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
            limit = values["jujuMaxUsers"].strip()
            body["jujuMaxUsers"] = int(limit) if limit.isascii() and limit.isdigit() else limit
        try:
            registered = await operate(PermissionOperatorController.register_company, request, services,
                                       body_of(body, CompanyIn))
        except Refused as refused:
            found = await operate(PermissionOperatorController.companies, request, services)
            return console_page("operator_companies.html", request, companies=found, values=values,
                                refusal=refused.refusal)
        return _done(request, f"{registered.name} を登録しました。",
                     f"{HOME}/companies")
