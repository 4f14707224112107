"""お客さま番号 (water-mypage-faq.txt): the linked customer numbers with the main one, 追加 by proving the contract,
メイン設定, 削除 and 退会, the last two after a confirmation step. The rules (the proof, the >20 warning, which number
becomes main when the main one goes) are invite's, reached through the JSON API's handlers."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from kagi_gateway.controllers.locations import ContractClaimController
from kagi_gateway.pages.console import act, confirm_page, console_page, tell
from kagi_gateway.pages.forms import Refusal, Refused, form_of, message_page, operate, operate_form, see_other
from kagi_gateway.pages.mypage import stepped_up
from kagi_gateway.pages.registration import PROOFS, claim_of
from kagi_gateway.pages.session import page_session
from kagi_gateway.services import Services
from kagi_shared.contracts.invite import MainIn

OWNER = ("owner",)
HOME = "/mypage/contracts"


class ContractPages(Controller):
    path = "/mypage"
    include_in_schema = False

    @get("/contracts", opt={"roles": OWNER})
    async def contracts(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        return await _page(request, services)

    @post("/contracts", opt={"roles": OWNER}, status_code=303)
    async def link(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        values = await form_of(request)
        try:
            linked = await operate(ContractClaimController.link, request, services, claim_of(values))
        except Refused as refused:
            if "body" in refused.refusal.fields:  # the API's "one of the three facts" reason
                refused.refusal.fields["proofValue"] = refused.refusal.fields.pop("body")
            return await _page(request, services, refused.refusal, values)
        tell(request, f"お客さま番号 {linked.claim.customer_number} を追加しました。"
                      + (f" {linked.warning}" if linked.warning else ""))
        return see_other(HOME)

    @post("/contracts/main", opt={"roles": OWNER}, status_code=303)
    async def main(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Redirect:
        values = await form_of(request)
        try:
            await operate_form(ContractClaimController.main, request, services, MainIn, values)
        except Refused as refused:
            tell(request, refused.refusal.fields.get("customerNumber") or refused.refusal.message, refused=True)
            return see_other(HOME)
        tell(request, f"お客さま番号 {values.get('customerNumber', '')} をメインに設定しました。")
        return see_other(HOME)

    @get("/contracts/{customer_number:str}/remove", opt={"roles": OWNER})
    async def remove_confirm(self, request: Request[Any, Any, Any], customer_number: FromPath[str]) -> Template:
        return confirm_page(request, "お客さま番号の削除",
                            f"お客さま番号 {customer_number} を削除します。削除するとこの番号のご契約情報は表示されなく"
                            "なります（もう一度追加すれば表示されます）。よろしいですか。",
                            f"{HOME}/{customer_number}/remove", "削除する", HOME)

    @post("/contracts/{customer_number:str}/remove", opt={"roles": OWNER}, status_code=303)
    async def remove(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     customer_number: FromPath[str]) -> Redirect:
        return await act(ContractClaimController.unlink, request, services, customer_number=customer_number,
                         back=HOME, done=f"お客さま番号 {customer_number} を削除しました。")

    # -- 退会 ---------------------------------------------------------------------------------------------
    @get("/withdrawal", opt={"roles": ("owner", "viewer")})
    async def withdrawal_confirm(self, request: Request[Any, Any, Any]) -> Template:
        return confirm_page(request, "退会",
                            "退会すると、登録したすべてのお客さま番号、利用者としてのご利用、閲覧者としての閲覧が"
                            "すべて解除されます。よろしいですか。", "/mypage/withdrawal", "退会する", "/account")

    @post("/withdrawal", opt={"roles": ("owner", "viewer")}, status_code=200)
    async def withdraw(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        # invite asks for a fresh 追加認証 before 退会
        done = await stepped_up(request, operate(ContractClaimController.withdraw, request, services))
        page_session(request).data.pop("notice", None)
        text = f"退会の手続きが完了しました（解除したお客さま番号 {done.contracts_unlinked}件）。"
        return message_page(request, "退会完了", text, links=[("/account", "マイページトップへ")])


async def _page(request: Request[Any, Any, Any], services: Services, refusal: Refusal | None = None,
                values: dict[str, str] | None = None) -> Template:
    listed = await operate(ContractClaimController.claims, request, services)
    return console_page("contracts.html", request, claims=listed, refusal=refusal, values=values or {},
                        proofs=PROOFS)
