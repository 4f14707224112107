"""Usage locations (ご使用場所) and viewer keys (認証キー): the owner shares a location, a viewer reads it.

A viewer may read a location's contract (契約内容), statements (ご利用明細) and energy data (エネみえ),
nothing else; a write attempt is refused with 403, and someone else's location answers 404.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post, put, route
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter

from kagi_gateway.deps import ANY_USER, current_caller, request_id
from kagi_gateway.schemas import Dto
from kagi_gateway.services import Services
from kagi_shared.problems import Problem

OWNER = ("owner",)
SECTIONS = ("contract", "statements", "energy")


class LocationOut(Dto):
    location_id: str
    supply_point_number: str
    customer_number: str
    name: str
    address: str


class LocationPageOut(Dto):
    items: list[LocationOut]
    total: int
    page: int
    per_page: int


class ViewerKeyOut(Dto):
    key_id: str
    key: str
    expires_at: datetime
    expires_at_text: str
    location: LocationOut


class ViewerOut(Dto):
    account_id: str
    login_id: str
    added_at: datetime


class ViewersOut(Dto):
    items: list[ViewerOut]


class AddViewingIn(Dto):
    key: Annotated[str, msgspec.Meta(max_length=64)]


class ViewingOut(Dto):
    items: list[LocationOut]


class ContractOut(Dto):
    location: LocationOut
    contract: dict[str, str]


class StatementOut(Dto):
    month: str
    amount_yen: int
    usage_kwh: float


class StatementsOut(Dto):
    location: LocationOut
    items: list[StatementOut]


class ReadingOut(Dto):
    day: date
    kwh: float


class EnergyOut(Dto):
    location: LocationOut
    items: list[ReadingOut]


class LocationController(Controller):
    path = "/api/v1/me"
    tags = ("locations",)

    # -- the owner -------------------------------------------------------------------------------
    @get("/locations", opt={"roles": OWNER}, summary="Usage locations: search by name, supply-point or customer no.")
    async def search(self, services: NamedDependency[Services], request: Request[Any, Any, Any], q: FromQuery[str] = "",
                     page: Annotated[int, Parameter(ge=1, le=100_000)] = 1,
                     per_page: Annotated[int, QueryParameter(name="perPage", ge=1, le=100)] = 10) -> LocationPageOut:
        reply = await services.call("invite", "GET", "/internal/locations", caller=current_caller(request),
                                    params={"q": q, "page": str(page), "per_page": str(per_page)},
                                    request_id=request_id(request))
        return msgspec.convert(reply, LocationPageOut)

    @post("/locations/{location_id:str}/viewer-keys", opt={"roles": OWNER}, status_code=201,
          summary="Issue a 24-hour viewer key for one location (needs a fresh step-up)")
    async def issue(self, location_id: FromPath[str], services: NamedDependency[Services],
                    request: Request[Any, Any, Any]) -> ViewerKeyOut:
        reply = await services.call("invite", "POST", f"/internal/locations/{location_id}/viewer-keys",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, ViewerKeyOut)

    @get("/locations/{location_id:str}/viewers", opt={"roles": OWNER}, summary="Viewers of one location (表示)")
    async def viewers(self, location_id: FromPath[str], services: NamedDependency[Services],
                      request: Request[Any, Any, Any]) -> ViewersOut:
        reply = await services.call("invite", "GET", f"/internal/locations/{location_id}/viewers",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, ViewersOut)

    @delete("/locations/{location_id:str}/viewers/{account_id:str}", opt={"roles": OWNER}, status_code=204,
            summary="Delete a viewer; effective immediately")
    async def remove_viewer(self, location_id: FromPath[str], account_id: FromPath[str],
                            services: NamedDependency[Services],
                            request: Request[Any, Any, Any]) -> None:
        await services.call("invite", "DELETE", f"/internal/locations/{location_id}/viewers/{account_id}",
                            caller=current_caller(request), request_id=request_id(request))

    # -- the viewer ------------------------------------------------------------------------------
    @post("/viewing-locations", opt={"roles": ANY_USER}, status_code=201,
          summary="Add a viewing location with a viewer key (閲覧場所追加)")
    async def add_viewing(self, data: JSONBody[AddViewingIn], services: NamedDependency[Services],
                          request: Request[Any, Any, Any]) -> LocationOut:
        reply = await services.call("invite", "POST", "/internal/viewing-locations", caller=current_caller(request),
                                    json={"key": data.key}, request_id=request_id(request))
        return msgspec.convert(reply, LocationOut)

    @get("/viewing-locations", opt={"roles": ANY_USER}, summary="Locations the caller may view")
    async def viewing(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> ViewingOut:
        reply = await services.call("invite", "GET", "/internal/viewing-locations", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, ViewingOut)

    async def _data(self, services: Services, request: Request[Any, Any, Any], location_id: str) -> Any:
        return await services.call("invite", "GET", f"/internal/viewing-locations/{location_id}",
                                   caller=current_caller(request), request_id=request_id(request))

    @get("/viewing-locations/{location_id:str}/contract", opt={"roles": ANY_USER}, summary="契約内容 (read only)")
    async def contract(self, location_id: FromPath[str], services: NamedDependency[Services],
                       request: Request[Any, Any, Any]) -> ContractOut:
        data = await self._data(services, request, location_id)
        return msgspec.convert({"location": data["location"], "contract": data["contract"]}, ContractOut)

    @get("/viewing-locations/{location_id:str}/statements", opt={"roles": ANY_USER},
         summary="ご利用明細 (read only)")
    async def statements(self, location_id: FromPath[str], services: NamedDependency[Services],
                         request: Request[Any, Any, Any]) -> StatementsOut:
        data = await self._data(services, request, location_id)
        return msgspec.convert({"location": data["location"], "items": data["statements"]}, StatementsOut)

    @get("/viewing-locations/{location_id:str}/energy", opt={"roles": ANY_USER}, summary="エネみえ (read only)")
    async def energy(self, location_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> EnergyOut:
        data = await self._data(services, request, location_id)
        return msgspec.convert({"location": data["location"], "items": data["energy"]}, EnergyOut)

    @route([f"/viewing-locations/{{location_id:str}}/{section}" for section in SECTIONS],
           http_method=["POST", "PUT", "PATCH", "DELETE"], opt={"roles": ANY_USER}, status_code=403,
           summary="Viewers cannot change anything", include_in_schema=False)
    async def read_only(self, location_id: FromPath[str]) -> None:
        # Not in the OpenAPI document: an operation that can only refuse would be a dead method in every client.
        raise Problem(403, "viewer.read_only", "閲覧者は参照のみ可能です。変更はできません。")


# -- water: contract claims (お客さま番号の登録) ---------------------------------------------------------
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ClaimIn(Dto):
    customer_number: Short
    billing_number: Short
    phone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    service_address: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    debit_last4: Annotated[str, msgspec.Meta(max_length=8)] | None = None


class ClaimOut(Dto):
    customer_number: str
    name: str
    main: bool
    linked_at: datetime


class LinkedOut(Dto):
    claim: ClaimOut
    count: int
    warning: str | None = None


class ClaimsOut(Dto):
    items: list[ClaimOut]
    count: int
    warning: str | None = None


class WaterContractOut(Dto):
    customer_number: str
    name: str
    service_address: str
    main: bool


class MainIn(Dto):
    customer_number: Short


class WithdrawnOut(Dto):
    contracts_unlinked: int


class SmsIn(Dto):
    mobile: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class SmsIssuedOut(Dto):
    sent_to: str
    expires_at: datetime


class SmsVerifyIn(Dto):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class RegistrationOut(Dto):
    sms_verified: bool
    contracts: int
    sms_verified_at: datetime | None = None


class ContractClaimController(Controller):
    path = "/api/v1/me"
    tags = ("contracts",)

    @post("/contracts", opt={"roles": OWNER}, status_code=201,
          summary="Link a customer number by proving the contract (no hint which field was wrong)")
    async def link(self, data: JSONBody[ClaimIn], services: NamedDependency[Services],
                   request: Request[Any, Any, Any]) -> LinkedOut:
        reply = await services.call("invite", "POST", "/internal/contracts", caller=current_caller(request),
                                    json=msgspec.to_builtins(data), request_id=request_id(request))
        return msgspec.convert(reply, LinkedOut)

    @get("/contracts", opt={"roles": OWNER}, summary="Linked customer numbers (warning above the recommended 20)")
    async def claims(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> ClaimsOut:
        reply = await services.call("invite", "GET", "/internal/contracts", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, ClaimsOut)

    @put("/contracts/main", opt={"roles": OWNER}, status_code=204, summary="Choose the main customer number")
    async def main(self, data: JSONBody[MainIn], services: NamedDependency[Services],
                   request: Request[Any, Any, Any]) -> None:
        await services.call("invite", "PUT", "/internal/contracts/main", caller=current_caller(request),
                            json={"customerNumber": data.customer_number}, request_id=request_id(request))

    @get("/contracts/{customer_number:str}", opt={"roles": OWNER}, summary="One linked contract")
    async def contract(self, customer_number: FromPath[str], services: NamedDependency[Services],
                       request: Request[Any, Any, Any]) -> WaterContractOut:
        reply = await services.call("invite", "GET", f"/internal/contracts/{customer_number}",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, WaterContractOut)

    @delete("/contracts/{customer_number:str}", opt={"roles": OWNER}, status_code=204,
            summary="Remove a customer number (its data is no longer visible; linking again restores it)")
    async def unlink(self, customer_number: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> None:
        await services.call("invite", "DELETE", f"/internal/contracts/{customer_number}",
                            caller=current_caller(request), request_id=request_id(request))

    @post("/withdrawal", opt={"roles": ("owner", "viewer")}, status_code=200,
          summary="退会: remove every contract link, co-user membership and viewer right")
    async def withdraw(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> WithdrawnOut:
        reply = await services.call("invite", "POST", "/internal/withdrawal", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, WithdrawnOut)

    @get("/registration", opt={"roles": OWNER}, summary="Registration state: SMS verification done, contracts")
    async def registration(self, services: NamedDependency[Services],
                           request: Request[Any, Any, Any]) -> RegistrationOut:
        reply = await services.call("invite", "GET", "/internal/registration", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, RegistrationOut)

    @post("/registration/sms", opt={"roles": OWNER}, status_code=201,
          summary="Send (or re-send) the registration's SMS code to a mobile number (10 minutes)")
    async def issue_sms(self, data: JSONBody[SmsIn], services: NamedDependency[Services],
                        request: Request[Any, Any, Any]) -> SmsIssuedOut:
        reply = await services.call("invite", "POST", "/internal/sms-verification", caller=current_caller(request),
                                    json={"mobile": data.mobile}, request_id=request_id(request))
        return msgspec.convert(reply, SmsIssuedOut)

    @post("/registration/sms/verify", opt={"roles": OWNER}, status_code=200,
          summary="Verify the SMS code; completes the registration")
    async def verify_sms(self, data: JSONBody[SmsVerifyIn], services: NamedDependency[Services],
                         request: Request[Any, Any, Any]) -> RegistrationOut:
        reply = await services.call("invite", "POST", "/internal/sms-verification/verify",
                                    caller=current_caller(request), json={"code": data.code},
                                    request_id=request_id(request))
        return msgspec.convert(reply, RegistrationOut)
