"""使用場所 and 閲覧者 (authkey-tepco-business.txt): the owner's locations with search by name / supply-point /
customer number and paging, a viewer key per location (shown once), the viewers of a location with 削除 (after a
confirmation step); the viewer adds a location with the key and reads its 契約内容, ご利用明細 and エネみえ, nothing
else. All through the JSON API's handlers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from kagi_gateway.controllers.locations import LocationController
from kagi_gateway.deps import ANY_USER
from kagi_gateway.pages.console import act, allow_copy_script, confirm_page, console_page, tell
from kagi_gateway.pages.forms import Refused, operate, operate_form, see_other
from kagi_gateway.pages.mypage import stepped_up
from kagi_gateway.services import Services
from kagi_shared.contracts.invite import AddViewingIn

OWNER = ("owner",)
HOME = "/mypage/locations"
PER_PAGE = 10
SECTION_TITLES = {"contract": "契約内容", "statements": "ご利用明細", "energy": "エネみえ"}


class LocationPages(Controller):
    path = HOME
    include_in_schema = False

    @get("/", opt={"roles": OWNER})
    async def search(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     q: Annotated[str, QueryParameter(name="q", max_length=100)] = "",
                     page_no: Annotated[int, QueryParameter(name="page", ge=1, le=100_000)] = 1) -> Template:
        found = await operate(LocationController.search, request, services, q=q, page=page_no, per_page=PER_PAGE)
        pages = max(1, -(-found.total // PER_PAGE))
        return console_page("locations.html", request, found=found, q=q, page_no=page_no, pages=pages)

    @post("/{location_id:str}/viewer-keys", opt={"roles": OWNER}, status_code=200)
    async def issue(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                    location_id: FromPath[str]) -> Template | Redirect:
        try:
            issued = await stepped_up(request, operate(LocationController.issue, request, services,
                                                       location_id=location_id))
        except Refused as refused:
            tell(request, refused.refusal.fields.get("locationId") or refused.refusal.message, refused=True)
            return see_other(HOME)
        allow_copy_script(request)
        return console_page("location_key.html", request, issued=issued)

    @get("/{location_id:str}/viewers", opt={"roles": OWNER})
    async def viewers(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                      location_id: FromPath[str]) -> Template:
        listed = await operate(LocationController.viewers, request, services, location_id=location_id)
        return console_page("location_viewers.html", request, viewers=listed.items, location_id=location_id)

    @get("/{location_id:str}/viewers/{account_id:str}/remove", opt={"roles": OWNER})
    async def remove_confirm(self, request: Request[Any, Any, Any], location_id: FromPath[str],
                             account_id: FromPath[str]) -> Template:
        back = f"{HOME}/{location_id}/viewers"
        return confirm_page(request, "閲覧者の削除",
                            "この閲覧者を削除します。削除するとこの使用場所はすぐに見られなくなります。よろしいですか。",
                            f"{back}/{account_id}/remove", "削除する", back)

    @post("/{location_id:str}/viewers/{account_id:str}/remove", opt={"roles": OWNER}, status_code=303)
    async def remove(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     location_id: FromPath[str], account_id: FromPath[str]) -> Redirect:
        return await act(LocationController.remove_viewer, request, services, location_id=location_id,
                         account_id=account_id, back=f"{HOME}/{location_id}/viewers", done="閲覧者を削除しました。")


class ViewingPages(Controller):
    """The viewer's side: 閲覧場所追加 with a key, then read-only pages per location."""

    path = "/viewing"
    include_in_schema = False

    @get("/", opt={"roles": ANY_USER})
    async def viewing(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        listed = await operate(LocationController.viewing, request, services)
        return console_page("viewing.html", request, locations=listed.items)

    @post("/", opt={"roles": ANY_USER, "rate": "guess"}, status_code=303)
    async def add(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        try:
            added = await operate_form(LocationController.add_viewing, request, services, AddViewingIn)
        except Refused as refused:
            listed = await operate(LocationController.viewing, request, services)
            if refused.refusal.code != "request.invalid":
                refused.refusal.fields.setdefault("key", refused.refusal.message)
            return console_page("viewing.html", request, locations=listed.items, refusal=refused.refusal)
        tell(request, f"{added.name} を閲覧場所に追加しました。")
        return see_other("/viewing")

    @get("/{location_id:str}/{section:str}", opt={"roles": ANY_USER})
    async def section(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                      location_id: FromPath[str],
                      section: FromPath[Literal["contract", "statements", "energy"]]) -> Template:
        handler = {"contract": LocationController.contract, "statements": LocationController.statements,
                   "energy": LocationController.energy}[section]
        # The read-only handlers share their controller's loader; it keeps no state, so a bare instance serves.
        shown = await operate(handler, request, services, location_id=location_id,
                              controller=object.__new__(LocationController))
        return console_page("viewing_section.html", request, shown=shown, section=section,
                            title=SECTION_TITLES[section], sections=SECTION_TITLES, location_id=location_id)
