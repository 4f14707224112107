"""Usage locations (ご使用場所) and viewer keys (認証キー): the owner shares a location, a viewer reads it.

A viewer may read a location's contract (契約内容), statements (ご利用明細) and energy data (エネみえ),
nothing else; a write attempt is refused with 403, and someone else's location answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post, put, route
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter

from kagi_gateway.deps import ANY_USER, current_caller, request_id
from kagi_gateway.schemas import Dto
from kagi_gateway.services import Services
from kagi_shared.contracts.invite import (
    AddViewingIn,
    ClaimIn,
    ClaimsOut,
    LinkedOut,
    LocationDataOut,
    LocationOut,
    LocationPageOut,
    MainIn,
    ReadingOut,
    RegistrationOut,
    SmsIn,
    SmsIssuedOut,
    SmsVerifyIn,
    StatementOut,
    ViewerKeyOut,
    ViewersOut,
    ViewingOut,
    WaterContractOut,
    WithdrawnOut,
)
from kagi_shared.problems import Problem

OWNER = ("owner",)
SECTIONS = ("contract", "statements", "energy")


class ContractOut(Dto):
    location: LocationOut
    contract: dict[str, str]


class StatementsOut(Dto):
    location: LocationOut
    items: list[StatementOut]


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
        return await services.invite.locations(current_caller(request), q, page, per_page, rid=request_id(request))

    @post("/locations/{location_id:str}/viewer-keys", opt={"roles": OWNER}, status_code=201,
          summary="Issue a 24-hour viewer key for one location (needs a fresh step-up)")
    async def issue(self, location_id: FromPath[str], services: NamedDependency[Services],
                    request: Request[Any, Any, Any]) -> ViewerKeyOut:
        return await services.invite.issue_viewer_key(current_caller(request), location_id, rid=request_id(request))

    @get("/locations/{location_id:str}/viewers", opt={"roles": OWNER}, summary="Viewers of one location (表示)")
    async def viewers(self, location_id: FromPath[str], services: NamedDependency[Services],
                      request: Request[Any, Any, Any]) -> ViewersOut:
        return await services.invite.viewers(current_caller(request), location_id, rid=request_id(request))

    @delete("/locations/{location_id:str}/viewers/{account_id:str}", opt={"roles": OWNER}, status_code=204,
            summary="Delete a viewer; effective immediately")
    async def remove_viewer(self, location_id: FromPath[str], account_id: FromPath[str],
                            services: NamedDependency[Services],
                            request: Request[Any, Any, Any]) -> None:
        await services.invite.remove_viewer(current_caller(request), location_id, account_id,
                                            rid=request_id(request))

    # -- the viewer ------------------------------------------------------------------------------
    @post("/viewing-locations", opt={"roles": ANY_USER}, status_code=201,
          summary="Add a viewing location with a viewer key (閲覧場所追加)")
    async def add_viewing(self, data: JSONBody[AddViewingIn], services: NamedDependency[Services],
                          request: Request[Any, Any, Any]) -> LocationOut:
        return await services.invite.add_viewing(current_caller(request), data, rid=request_id(request))

    @get("/viewing-locations", opt={"roles": ANY_USER}, summary="Locations the caller may view")
    async def viewing(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> ViewingOut:
        return await services.invite.viewing(current_caller(request), rid=request_id(request))

    async def _data(self, services: Services, request: Request[Any, Any, Any], location_id: str) -> LocationDataOut:
        return await services.invite.location_data(current_caller(request), location_id, rid=request_id(request))

    @get("/viewing-locations/{location_id:str}/contract", opt={"roles": ANY_USER}, summary="契約内容 (read only)")
    async def contract(self, location_id: FromPath[str], services: NamedDependency[Services],
                       request: Request[Any, Any, Any]) -> ContractOut:
        data = await self._data(services, request, location_id)
        return ContractOut(location=data.location, contract=data.contract)

    @get("/viewing-locations/{location_id:str}/statements", opt={"roles": ANY_USER},
         summary="ご利用明細 (read only)")
    async def statements(self, location_id: FromPath[str], services: NamedDependency[Services],
                         request: Request[Any, Any, Any]) -> StatementsOut:
        data = await self._data(services, request, location_id)
        return StatementsOut(location=data.location, items=data.statements)

    @get("/viewing-locations/{location_id:str}/energy", opt={"roles": ANY_USER}, summary="エネみえ (read only)")
    async def energy(self, location_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> EnergyOut:
        data = await self._data(services, request, location_id)
        return EnergyOut(location=data.location, items=data.energy)

    @route([f"/viewing-locations/{{location_id:str}}/{section}" for section in SECTIONS],
           http_method=["POST", "PUT", "PATCH", "DELETE"], opt={"roles": ANY_USER}, status_code=403,
           summary="Viewers cannot change anything", include_in_schema=False)
    async def read_only(self, location_id: FromPath[str]) -> None:
        # Not in the OpenAPI document: an operation that can only refuse would be a dead method in every client.
        raise Problem(403, "viewer.read_only", "閲覧者は参照のみ可能です。変更はできません。")


# -- water: contract claims (お客さま番号の登録) ---------------------------------------------------------
class ContractClaimController(Controller):
    path = "/api/v1/me"
    tags = ("contracts",)

    @post("/contracts", opt={"roles": OWNER}, status_code=201,
          summary="Link a customer number by proving the contract (no hint which field was wrong)")
    async def link(self, data: JSONBody[ClaimIn], services: NamedDependency[Services],
                   request: Request[Any, Any, Any]) -> LinkedOut:
        return await services.invite.link_contract(current_caller(request), data, rid=request_id(request))

    @get("/contracts", opt={"roles": OWNER}, summary="Linked customer numbers (warning above the recommended 20)")
    async def claims(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> ClaimsOut:
        return await services.invite.claims(current_caller(request), rid=request_id(request))

    @put("/contracts/main", opt={"roles": OWNER}, status_code=204, summary="Choose the main customer number")
    async def main(self, data: JSONBody[MainIn], services: NamedDependency[Services],
                   request: Request[Any, Any, Any]) -> None:
        await services.invite.set_main(current_caller(request), data, rid=request_id(request))

    @get("/contracts/{customer_number:str}", opt={"roles": OWNER}, summary="One linked contract")
    async def contract(self, customer_number: FromPath[str], services: NamedDependency[Services],
                       request: Request[Any, Any, Any]) -> WaterContractOut:
        return await services.invite.contract(current_caller(request), customer_number, rid=request_id(request))

    @delete("/contracts/{customer_number:str}", opt={"roles": OWNER}, status_code=204,
            summary="Remove a customer number (its data is no longer visible; linking again restores it)")
    async def unlink(self, customer_number: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> None:
        await services.invite.unlink_contract(current_caller(request), customer_number, rid=request_id(request))

    @post("/withdrawal", opt={"roles": ("owner", "viewer")}, status_code=200,
          summary="退会: remove every contract link, co-user membership and viewer right")
    async def withdraw(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> WithdrawnOut:
        return await services.invite.withdraw(current_caller(request), rid=request_id(request))

    @get("/registration", opt={"roles": OWNER}, summary="Registration state: SMS verification done, contracts")
    async def registration(self, services: NamedDependency[Services],
                           request: Request[Any, Any, Any]) -> RegistrationOut:
        return await services.invite.registration(current_caller(request), rid=request_id(request))

    @post("/registration/sms", opt={"roles": OWNER}, status_code=201,
          summary="Send (or re-send) the registration's SMS code to a mobile number (10 minutes)")
    async def issue_sms(self, data: JSONBody[SmsIn], services: NamedDependency[Services],
                        request: Request[Any, Any, Any]) -> SmsIssuedOut:
        return await services.invite.issue_sms(current_caller(request), data, rid=request_id(request))

    @post("/registration/sms/verify", opt={"roles": OWNER}, status_code=200,
          summary="Verify the SMS code; completes the registration")
    async def verify_sms(self, data: JSONBody[SmsVerifyIn], services: NamedDependency[Services],
                         request: Request[Any, Any, Any]) -> RegistrationOut:
        return await services.invite.verify_sms(current_caller(request), data, rid=request_id(request))
