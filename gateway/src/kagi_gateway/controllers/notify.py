"""Notifications: a user's preferences (全体通知), admin contact addresses and info-sharing-site notices."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from kagi_gateway.deps import ANY_USER, PUBLIC, current_caller, request_id
from kagi_gateway.services import Services
from kagi_shared.contracts.notify import (
    AdminContactConfirmIn,
    AdminContactIn,
    AdminContactOut,
    NotificationPreferencesIn,
    NotificationPreferencesOut,
    SiteUpdateIn,
    SiteUpdateOut,
)

OPERATOR = ("operator",)


class NotificationPreferencesController(Controller):
    path = "/api/v1/me/notification-preferences"
    tags = ("notifications",)

    @get("/", opt={"roles": ANY_USER}, summary="The caller's notification preferences")
    async def show(self, services: NamedDependency[Services],
                   request: Request[Any, Any, Any]) -> NotificationPreferencesOut:
        return await services.notify.preferences(current_caller(request), rid=request_id(request))

    @put("/", opt={"roles": ANY_USER}, summary="Switch general notices (全体通知) on or off")
    async def update(self, data: JSONBody[NotificationPreferencesIn], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> NotificationPreferencesOut:
        return await services.notify.set_preferences(current_caller(request), data, rid=request_id(request))


class AdminContactsController(Controller):
    path = "/api/v1/operator/admin-contacts"
    tags = ("operator", "notifications")

    @get("/", opt={"roles": OPERATOR}, summary="Admin contact addresses (provisional and active)")
    async def index(self, services: NamedDependency[Services],
                    request: Request[Any, Any, Any]) -> list[AdminContactOut]:
        return await services.notify.admin_contacts(current_caller(request), rid=request_id(request))

    @post("/", opt={"roles": OPERATOR}, status_code=201,
          summary="Register an admin address provisionally and mail it a confirmation link (valid 7 days)")
    async def register(self, data: JSONBody[AdminContactIn], services: NamedDependency[Services],
                       request: Request[Any, Any, Any]) -> AdminContactOut:
        return await services.notify.register_contact(current_caller(request), data, rid=request_id(request))

    @post("/{contact_id:str}/resend", opt={"roles": OPERATOR}, status_code=200,
          summary="Mail a fresh confirmation link; the previous one stops working")
    async def resend(self, contact_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> AdminContactOut:
        return await services.notify.resend_link(current_caller(request), contact_id, rid=request_id(request))

    @delete("/{contact_id:str}", opt={"roles": OPERATOR}, status_code=204,
            summary="Remove an admin who left, with their address")
    async def remove(self, contact_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> None:
        await services.notify.remove_contact(current_caller(request), contact_id, rid=request_id(request))


class AdminContactConfirmController(Controller):
    path = "/api/v1/admin-contacts"
    tags = ("notifications",)

    @post("/confirm", opt={"roles": PUBLIC, "problems": (410,)}, status_code=200,
          summary="Confirm an admin address with the token from its confirmation mail (本登録)")
    async def confirm(self, data: JSONBody[AdminContactConfirmIn], services: NamedDependency[Services],
                      request: Request[Any, Any, Any]) -> AdminContactOut:
        return await services.notify.confirm_contact(data, rid=request_id(request))


class InfoSiteController(Controller):
    path = "/api/v1/operator/info-site"
    tags = ("operator", "notifications")

    @post("/updates", opt={"roles": OPERATOR}, status_code=201,
          summary="Post an info-sharing-site update; active admin addresses are mailed unless noNotice")
    async def post_update(self, data: JSONBody[SiteUpdateIn], services: NamedDependency[Services],
                          request: Request[Any, Any, Any]) -> SiteUpdateOut:
        return await services.notify.post_update(current_caller(request), data, rid=request_id(request))


CONTROLLERS: list[type] = [NotificationPreferencesController, AdminContactsController,
                           AdminContactConfirmController, InfoSiteController]
