"""Invite's internal API for usage locations, viewer keys and read-only viewing (TEPCO business)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from kagi_invite.domain.locations import Location, ViewerRight, supply_point_number, supply_point_problem
from kagi_shared.contracts.invite import (
    AddViewingIn,
    LocationDataOut,
    LocationOut,
    LocationPageOut,
    ReadingOut,
    StatementOut,
    ViewerKeyOut,
    ViewerOut,
    ViewersOut,
    ViewingOut,
)
from kagi_shared.jst import jp_deadline
from kagi_shared.problems import FieldError, Problem
from kagi_shared.service_api import Caller, caller_as, caller_of, correlation_of

if TYPE_CHECKING:
    from kagi_invite.bootstrap import Invite


def location_out(location: Location) -> LocationOut:
    return LocationOut(location_id=location.id, supply_point_number=location.id,
                       customer_number=location.customer_number, name=location.name, address=location.address)


def viewer_out(right: ViewerRight) -> ViewerOut:
    return ViewerOut(account_id=right.account_id, login_id=right.login_id, added_at=right.added_at)


def checked_location(location_id: str) -> str:
    if problem := supply_point_problem(location_id):
        raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=[FieldError("locationId", problem)])
    return supply_point_number(location_id)


def location_handlers(app: Callable[[], Invite]) -> list[Any]:
    def owner(request: Request[Any, Any, Any]) -> Caller:
        return caller_as(request, "owner")

    @get("/internal/locations")
    async def search(request: Request[Any, Any, Any], q: FromQuery[str] = "", page: FromQuery[int] = 1,
                     per_page: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10) -> LocationPageOut:
        items, total = await app().locations.search(owner(request), q, page, per_page)
        return LocationPageOut(items=[location_out(x) for x in items], total=total, page=max(page, 1),
                               per_page=per_page)

    @post("/internal/locations/{location_id:str}/viewer-keys", status_code=201)
    async def issue(location_id: FromPath[str], request: Request[Any, Any, Any]) -> ViewerKeyOut:
        plain, key, location = await app().locations.issue_viewer_key(owner(request), checked_location(location_id),
                                                                       correlation_of(request))
        return ViewerKeyOut(key_id=key.id, key=plain, expires_at=key.expires_at,
                            expires_at_text=jp_deadline(key.expires_at), location=location_out(location))

    @get("/internal/locations/{location_id:str}/viewers")
    async def viewers(location_id: FromPath[str], request: Request[Any, Any, Any]) -> ViewersOut:
        rights = await app().locations.viewers(owner(request), checked_location(location_id))
        return ViewersOut(items=[viewer_out(r) for r in rights])

    @delete("/internal/locations/{location_id:str}/viewers/{account_id:str}", status_code=204)
    async def remove_viewer(location_id: FromPath[str], account_id: FromPath[str],
                            request: Request[Any, Any, Any]) -> None:
        await app().locations.remove_viewer(owner(request), checked_location(location_id), account_id,
                                            correlation_of(request))

    @post("/internal/viewing-locations", status_code=201)
    async def add_viewing(data: JSONBody[AddViewingIn], request: Request[Any, Any, Any]) -> LocationOut:
        return location_out(await app().locations.add_viewing(caller_of(request), data.key, correlation_of(request)))

    @get("/internal/viewing-locations")
    async def viewing(request: Request[Any, Any, Any]) -> ViewingOut:
        return ViewingOut(items=[location_out(x) for x in await app().locations.viewing(caller_of(request))])

    @get("/internal/viewing-locations/{location_id:str}")
    async def view(location_id: FromPath[str], request: Request[Any, Any, Any]) -> LocationDataOut:
        location = await app().locations.view(caller_of(request), checked_location(location_id))
        return LocationDataOut(location=location_out(location), contract=location.contract,
                               statements=msgspec.convert(location.statements, list[StatementOut]),
                               energy=msgspec.convert(location.energy, list[ReadingOut]))

    return [search, issue, viewers, remove_viewer, add_viewing, viewing, view]
