"""Invite's internal API for water contract claims and withdrawal (退会)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from litestar import Request, delete, get, post, put
from litestar.params import FromPath, JSONBody

from kagi_invite.domain.claims import Proof
from kagi_shared.contracts.invite import (
    ClaimIn,
    ClaimOut,
    ClaimsOut,
    LinkedOut,
    MainIn,
    RegistrationOut,
    SmsIn,
    SmsIssuedOut,
    SmsVerifyIn,
    WaterContractOut,
    WithdrawnOut,
)
from kagi_shared.service_api import Caller, caller_as, caller_of, correlation_of

if TYPE_CHECKING:
    from kagi_invite.bootstrap import Invite

def claim_handlers(app: Callable[[], Invite]) -> list[Any]:
    def owner(request: Request[Any, Any, Any]) -> Caller:
        return caller_as(request, "owner")

    @post("/internal/contracts", status_code=201)
    async def link(data: JSONBody[ClaimIn], request: Request[Any, Any, Any]) -> LinkedOut:
        proof = Proof(customer_number=data.customer_number, billing_number=data.billing_number, phone=data.phone,
                      service_address=data.service_address, debit_last4=data.debit_last4)
        result = await app().claims.link(owner(request), proof, correlation_of(request))
        contract = await app().claims_repo.contract(result.claim.customer_number)
        return LinkedOut(claim=ClaimOut(customer_number=result.claim.customer_number,
                                        name=contract.name if contract else "", main=result.claim.main,
                                        linked_at=result.claim.linked_at),
                         count=result.count, warning=result.warning)

    @get("/internal/contracts")
    async def claims(request: Request[Any, Any, Any]) -> ClaimsOut:
        found, contracts = await app().claims.claims(owner(request))
        items = [ClaimOut(customer_number=c.customer_number, name=contracts[c.customer_number].name
                          if c.customer_number in contracts else "", main=c.main, linked_at=c.linked_at)
                 for c in found]
        limit = app().claims.settings.invite.claim_recommended_max
        return ClaimsOut(items=items, count=len(items),
                         warning="claims.above_recommended" if len(items) > limit else None)

    @get("/internal/contracts/{customer_number:str}")
    async def contract(customer_number: FromPath[str], request: Request[Any, Any, Any]) -> WaterContractOut:
        caller = owner(request)
        found = await app().claims.contract(caller, customer_number)
        mains = {c.customer_number for c in (await app().claims.claims(caller))[0] if c.main}
        return WaterContractOut(customer_number=found.id, name=found.name, service_address=found.service_address,
                           main=found.id in mains)

    @put("/internal/contracts/main", status_code=204)
    async def main(data: JSONBody[MainIn], request: Request[Any, Any, Any]) -> None:
        await app().claims.set_main(owner(request), data.customer_number, correlation_of(request))

    @delete("/internal/contracts/{customer_number:str}", status_code=204)
    async def unlink(customer_number: FromPath[str], request: Request[Any, Any, Any]) -> None:
        await app().claims.unlink(owner(request), customer_number, correlation_of(request))

    @post("/internal/withdrawal", status_code=200)
    async def withdraw(request: Request[Any, Any, Any]) -> WithdrawnOut:
        return WithdrawnOut(contracts_unlinked=await app().claims.withdraw(caller_of(request), correlation_of(request)))

    @post("/internal/sms-verification", status_code=201)
    async def issue_sms(data: JSONBody[SmsIn], request: Request[Any, Any, Any]) -> SmsIssuedOut:
        code = await app().claims.issue_sms(owner(request), data.mobile, correlation_of(request))
        number = "".join(ch for ch in data.mobile if ch.isdigit())
        return SmsIssuedOut(sent_to=f"{number[:3]}****{number[-4:]}", expires_at=code.expires_at)

    @post("/internal/sms-verification/verify", status_code=200)
    async def verify_sms(data: JSONBody[SmsVerifyIn], request: Request[Any, Any, Any]) -> RegistrationOut:
        caller = owner(request)
        at = await app().claims.verify_sms(caller, data.code, correlation_of(request))
        return RegistrationOut(sms_verified=True, sms_verified_at=at,
                               contracts=len((await app().claims.claims(caller))[0]))

    @get("/internal/registration")
    async def registration(request: Request[Any, Any, Any]) -> RegistrationOut:
        caller = owner(request)
        at = await app().claims.sms_verified_at(caller)
        return RegistrationOut(sms_verified=at is not None, sms_verified_at=at,
                               contracts=len((await app().claims.claims(caller))[0]))

    return [link, claims, contract, main, unlink, withdraw, issue_sms, verify_sms, registration]
