"""Usage locations (ご使用場所) and viewer keys (認証キー): the owner shares a location, a viewer reads it.

A viewer may read a location's contract (契約内容), statements (ご利用明細) and energy data (エネみえ),
nothing else; a write attempt is refused with 403, and someone else's location answers 404.
"""

from __future__ import annotations

from typing import Annotated

from litestar import delete, get, post, put, route
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter, QueryParameter

from kagi_gateway.deps import ANY_USER, Call
from kagi_gateway.forward import ApiController, forward
from kagi_gateway.schemas import Dto
from kagi_shared.contracts.invite import (
    InviteClient,
    LocationDataOut,
    LocationOut,
    LocationPageOut,
    ReadingOut,
    StatementOut,
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


class LocationController(ApiController):
    path = "/api/v1/me"
    tags = ("locations",)

    # -- the owner -------------------------------------------------------------------------------
    @get("/locations", opt={"roles": OWNER}, summary="Usage locations: search by name, supply-point or customer no.")
    async def search(self, call: NamedDependency[Call], q: FromQuery[str] = "",
                     page: Annotated[int, Parameter(ge=1, le=100_000)] = 1,
                     per_page: Annotated[int, QueryParameter(name="perPage", ge=1, le=100)] = 10) -> LocationPageOut:
        return await call.invite.locations(call.caller, q, page, per_page, rid=call.rid)

    issue = forward(post("/locations/{location_id:str}/viewer-keys", opt={"roles": OWNER, "idempotent": True},
                         status_code=201,
                         summary="Issue a 24-hour viewer key for one location (needs a fresh step-up)"),
                    InviteClient.issue_viewer_key)

    viewers = forward(get("/locations/{location_id:str}/viewers", opt={"roles": OWNER},
                          summary="Viewers of one location (表示)"), InviteClient.viewers)

    remove_viewer = forward(delete("/locations/{location_id:str}/viewers/{account_id:str}", opt={"roles": OWNER},
                                   status_code=204,
                                   summary="Delete a viewer; effective immediately"), InviteClient.remove_viewer)

    # -- the viewer ------------------------------------------------------------------------------
    add_viewing = forward(post("/viewing-locations", opt={"roles": ANY_USER}, status_code=201,
                               summary="Add a viewing location with a viewer key (閲覧場所追加)"),
                          InviteClient.add_viewing)

    viewing = forward(get("/viewing-locations", opt={"roles": ANY_USER},
                          summary="Locations the caller may view"), InviteClient.viewing)

    async def _data(self, call: Call, location_id: str) -> LocationDataOut:
        return await call.invite.location_data(call.caller, location_id, rid=call.rid)

    @get("/viewing-locations/{location_id:str}/contract", opt={"roles": ANY_USER}, summary="契約内容 (read only)")
    async def contract(self, location_id: FromPath[str], call: NamedDependency[Call]) -> ContractOut:
        data = await self._data(call, location_id)
        return ContractOut(location=data.location, contract=data.contract)

    @get("/viewing-locations/{location_id:str}/statements", opt={"roles": ANY_USER},
         summary="ご利用明細 (read only)")
    async def statements(self, location_id: FromPath[str], call: NamedDependency[Call]) -> StatementsOut:
        data = await self._data(call, location_id)
        return StatementsOut(location=data.location, items=data.statements)

    @get("/viewing-locations/{location_id:str}/energy", opt={"roles": ANY_USER}, summary="エネみえ (read only)")
    async def energy(self, location_id: FromPath[str], call: NamedDependency[Call]) -> EnergyOut:
        data = await self._data(call, location_id)
        return EnergyOut(location=data.location, items=data.energy)

    @route([f"/viewing-locations/{{location_id:str}}/{section}" for section in SECTIONS],
           http_method=["POST", "PUT", "PATCH", "DELETE"], opt={"roles": ANY_USER}, status_code=403,
           summary="Viewers cannot change anything", include_in_schema=False)
    async def read_only(self, location_id: FromPath[str]) -> None:
        # Not in the OpenAPI document: an operation that can only refuse would be a dead method in every client.
        raise Problem(403, "viewer.read_only", "閲覧者は参照のみ可能です。変更はできません。")


# -- water: contract claims (お客さま番号の登録) ---------------------------------------------------------
class ContractClaimController(ApiController):
    path = "/api/v1/me"
    tags = ("contracts",)

    link = forward(post("/contracts", opt={"roles": OWNER}, status_code=201,
                        summary="Link a customer number by proving the contract (no hint which field was wrong)"),
                   InviteClient.link_contract)

    claims = forward(get("/contracts", opt={"roles": OWNER},
                         summary="Linked customer numbers (warning above the recommended 20)"), InviteClient.claims)

    main = forward(put("/contracts/main", opt={"roles": OWNER}, status_code=204,
                       summary="Choose the main customer number"), InviteClient.set_main)

    contract = forward(get("/contracts/{customer_number:str}", opt={"roles": OWNER},
                           summary="One linked contract"), InviteClient.contract)

    unlink = forward(
        delete("/contracts/{customer_number:str}", opt={"roles": OWNER}, status_code=204,
               summary="Remove a customer number (its data is no longer visible; linking again restores it)"),
        InviteClient.unlink_contract)

    withdraw = forward(post("/withdrawal", opt={"roles": ("owner", "viewer")}, status_code=200,
                            summary="退会: remove every contract link, co-user membership and viewer right"),
                       InviteClient.withdraw)

    registration = forward(get("/registration", opt={"roles": OWNER},
                               summary="Registration state: SMS verification done, contracts"),
                           InviteClient.registration)

    issue_sms = forward(post("/registration/sms", opt={"roles": OWNER}, status_code=201,
                             summary="Send (or re-send) the registration's SMS code to a mobile number (10 minutes)"),
                        InviteClient.issue_sms)

    verify_sms = forward(post("/registration/sms/verify", opt={"roles": OWNER}, status_code=200,
                              summary="Verify the SMS code; completes the registration"), InviteClient.verify_sms)
