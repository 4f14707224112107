"""The permission request list and detail pages, one rendering for the company admin's and the operator's consoles
(each console keeps its own routes and roles; the permissions controller decides what each caller may see)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template

from kagi_gateway.controllers.permissions import PermissionRequestController
from kagi_gateway.pages.console import console_page
from kagi_gateway.pages.forms import operate
from kagi_gateway.services import Services

SYSTEM_COLUMNS = ("TAXIS", "JOHS", "JUJU", "LOACUS", "INFOSITE")
"""The 済/未済/(不要) columns of the seed's request screens."""


async def request_list(request: Request[Any, Any, Any], services: Services, home: str, status: str | None,
                       user_id: str | None, company_id: str | None = None) -> Template:
    """``company_id``: the operator's search within one company (an admin's search is always their own's)."""
    found = await operate(PermissionRequestController.search, request, services, status=status or None,
                          user_id=user_id or None, company_id=company_id or None)
    return console_page("company_requests.html", request, requests=found, columns=SYSTEM_COLUMNS,
                        status=status or "", user_id=user_id or "", company_id=company_id or "",
                        base=f"{home}/requests")


async def request_detail(request: Request[Any, Any, Any], services: Services, home: str, request_id: str,
                         operator: bool) -> Template:
    shown = await operate(PermissionRequestController.view, request, services, request_id_=request_id)
    return console_page("permission_request.html", request, req=shown, columns=SYSTEM_COLUMNS,
                        back=f"{home}/requests", operator=operator)
