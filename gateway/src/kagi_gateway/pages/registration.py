"""新規登録 (water): the mailed link → password → logged in → お客さま番号の登録 → SMS認証 → 登録完了."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from kagi_gateway.controllers.locations import ContractClaimController
from kagi_gateway.controllers.registration import RegistrationController, RegistrationIn
from kagi_gateway.deps import PUBLIC, settings_of
from kagi_gateway.pages import forms
from kagi_gateway.pages.account import sign_in
from kagi_gateway.pages.rules import password_rules
from kagi_gateway.services import Services
from kagi_shared.contracts.invite import ClaimIn, SmsIn, SmsVerifyIn
from kagi_shared.contracts.lifecycle import RegistrationCompleteIn, RegistrationTokenIn

OWNER = ("owner",)
Token = Annotated[str | None, QueryParameter(name="token", max_length=256, required=False)]
PROOFS = {"phone": "電話番号", "serviceAddress": "ご使用場所の住所", "debitLast4": "口座番号の下4桁"}


def claim_of(values: dict[str, str]) -> ClaimIn:
    """The contract-proof form (お客さま番号, 請求番号 and one chosen fact) as the API's claim."""
    body = {k: values.get(k, "") for k in ("customerNumber", "billingNumber")}
    proof = values.get("proof", "")
    if proof in PROOFS:
        body[proof] = values.get("proofValue", "")
    claim: ClaimIn = forms.body_of(body, ClaimIn)
    return claim


class RegistrationPages(Controller):
    path = "/register"
    include_in_schema = False

    @get("/", opt={"roles": PUBLIC, "rate": "guess"})
    async def open_link(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                        token: Token = None) -> Template:
        if token is None:
            return forms.form_page("register_request.html", request)
        try:
            link = await forms.operate(RegistrationController.check, request, services,
                                       forms.body_of({"token": token or ""}, RegistrationTokenIn))
        except forms.Refused as refused:
            return forms.refusal_page(request, "新規登録", refused.refusal)
        return forms.form_page("register_password.html", request, email=link.email, expires=link.expires_at_text,
                               token=token, rules=password_rules(settings_of(request)))

    @post("/request", opt={"roles": PUBLIC}, status_code=200)
    async def request_link(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        return await forms.submit_for_message(RegistrationController.request_link, request, services, RegistrationIn,
                                              again="register_request.html", title="新規登録")

    @post("/", opt={"roles": PUBLIC, "rate": "guess"}, status_code=303)
    async def complete(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        values = await forms.form_of(request)
        try:
            done = await forms.operate_form(RegistrationController.complete, request, services, RegistrationCompleteIn,
                                            values)
        except forms.Refused as refused:
            if "password" in refused.refusal.fields:
                return forms.form_page("register_password.html", request, refused.refusal, values,
                                       email=values.get("email", ""), token=values.get("token", ""),
                                       rules=password_rules(settings_of(request)))
            return forms.refusal_page(request, "新規登録", refused.refusal)
        try:
            await sign_in(request, services, done.login_id, values["password"])
        except forms.Refused:
            return forms.message_page(request, "新規登録", done.message, links=[("/login", "ログイン画面へ")])
        return forms.see_other("/register/contract")

    @get("/contract", opt={"roles": OWNER})
    async def contract_form(self, request: Request[Any, Any, Any]) -> Template:
        return forms.form_page("register_contract.html", request, proofs=PROOFS)

    @post("/contract", opt={"roles": OWNER}, status_code=303)
    async def claim(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template | Redirect:
        values = await forms.form_of(request)
        try:
            await forms.operate(ContractClaimController.link, request, services, claim_of(values))
        except forms.Refused as refused:
            if "body" in refused.refusal.fields:  # the API's "one of the three facts" reason
                refused.refusal.fields["proofValue"] = refused.refusal.fields.pop("body")
            return forms.form_page("register_contract.html", request, refused.refusal, values, proofs=PROOFS)
        return forms.see_other("/register/sms")

    @get("/sms", opt={"roles": OWNER})
    async def sms_form(self, request: Request[Any, Any, Any]) -> Template:
        return forms.form_page("register_sms.html", request, sent_to=None)

    @post("/sms", opt={"roles": OWNER}, status_code=200)
    async def send_sms(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        sent = await forms.submit(ContractClaimController.issue_sms, request, services, SmsIn,
                                  again="register_sms.html", sent_to=None)
        return forms.form_page("register_sms.html", request, sent_to=sent.sent_to)

    @post("/sms/verify", opt={"roles": OWNER}, status_code=200)
    async def verify_sms(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        values = await forms.form_of(request)
        await forms.submit(ContractClaimController.verify_sms, request, services, SmsVerifyIn,
                           again="register_sms.html", values=values, sent_to=values.get("sentTo"))
        return forms.message_page(request, "登録完了", "利用登録が完了しました。マイページをご利用いただけます。",
                                  links=[("/account", "マイページへ")])
