"""Notifications: a user's preferences (全体通知), admin contact addresses and info-sharing-site notices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from kagi_gateway.deps import ANY_USER, PUBLIC, current_caller, request_id
from kagi_gateway.schemas import Dto
from kagi_gateway.services import Services

OPERATOR = ("operator",)


class NotificationPreferencesIn(Dto):
    receive_general_notices: bool
    """全体通知を受け取る: general notices, disaster notices (断水情報等) included."""


class NotificationPreferencesOut(Dto):
    receive_general_notices: bool
    always_sent: list[str]
    """Categories that cannot be switched off."""
    notice: str
    """What switching off means, in Japanese: disaster notices stop too."""
    updated_at: datetime | None


class AdminContactIn(Dto):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    company: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class AdminContactOut(Dto):
    contact_id: str
    email: str
    company: str | None
    status: str
    link_expires_at: datetime | None
    links_sent: int
    created_at: datetime
    confirmed_at: datetime | None


class AdminContactConfirmIn(Dto):
    token: Annotated[str, msgspec.Meta(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")]


class SiteUpdateIn(Dto):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"^https?://\S+$")]
    no_notice: bool = False
    """掲載情報更新通知メールの送信は不要: post without mailing anyone."""


class SiteUpdateOut(Dto):
    update_id: str
    no_notice: bool
    notified: int


class NotificationPreferencesController(Controller):
    path = "/api/v1/me/notification-preferences"
    tags = ("notifications",)

    @get("/", opt={"roles": ANY_USER}, summary="The caller's notification preferences")
    async def show(self, services: NamedDependency[Services],
                   request: Request[Any, Any, Any]) -> NotificationPreferencesOut:
        reply = await services.call("notify", "GET", "/internal/preferences", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, NotificationPreferencesOut)

    @put("/", opt={"roles": ANY_USER}, summary="Switch general notices (全体通知) on or off")
    async def update(self, data: JSONBody[NotificationPreferencesIn], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> NotificationPreferencesOut:
        reply = await services.call("notify", "PUT", "/internal/preferences", caller=current_caller(request),
                                    json=msgspec.to_builtins(data), request_id=request_id(request))
        return msgspec.convert(reply, NotificationPreferencesOut)


class AdminContactsController(Controller):
    path = "/api/v1/operator/admin-contacts"
    tags = ("operator", "notifications")

    @get("/", opt={"roles": OPERATOR}, summary="Admin contact addresses (provisional and active)")
    async def index(self, services: NamedDependency[Services],
                    request: Request[Any, Any, Any]) -> list[AdminContactOut]:
        reply = await services.call("notify", "GET", "/internal/admin-contacts", caller=current_caller(request),
                                    request_id=request_id(request))
        return msgspec.convert(reply, list[AdminContactOut])

    @post("/", opt={"roles": OPERATOR}, status_code=201,
          summary="Register an admin address provisionally and mail it a confirmation link (valid 7 days)")
    async def register(self, data: JSONBody[AdminContactIn], services: NamedDependency[Services],
                       request: Request[Any, Any, Any]) -> AdminContactOut:
        reply = await services.call("notify", "POST", "/internal/admin-contacts", caller=current_caller(request),
                                    json=msgspec.to_builtins(data), request_id=request_id(request))
        return msgspec.convert(reply, AdminContactOut)

    @post("/{contact_id:str}/resend", opt={"roles": OPERATOR}, status_code=200,
          summary="Mail a fresh confirmation link; the previous one stops working")
    async def resend(self, contact_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> AdminContactOut:
        reply = await services.call("notify", "POST", f"/internal/admin-contacts/{contact_id}/resend",
                                    caller=current_caller(request), request_id=request_id(request))
        return msgspec.convert(reply, AdminContactOut)

    @delete("/{contact_id:str}", opt={"roles": OPERATOR}, status_code=204,
            summary="Remove an admin who left, with their address")
    async def remove(self, contact_id: FromPath[str], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> None:
        await services.call("notify", "DELETE", f"/internal/admin-contacts/{contact_id}",
                            caller=current_caller(request), request_id=request_id(request))


class AdminContactConfirmController(Controller):
    path = "/api/v1/admin-contacts"
    tags = ("notifications",)

    @post("/confirm", opt={"roles": PUBLIC, "problems": (410,)}, status_code=200,
          summary="Confirm an admin address with the token from its confirmation mail (本登録)")
    async def confirm(self, data: JSONBody[AdminContactConfirmIn], services: NamedDependency[Services],
                      request: Request[Any, Any, Any]) -> AdminContactOut:
        reply = await services.call("notify", "POST", "/internal/admin-contacts/confirm",
                                    json=msgspec.to_builtins(data), request_id=request_id(request))
        return msgspec.convert(reply, AdminContactOut)


class InfoSiteController(Controller):
    path = "/api/v1/operator/info-site"
    tags = ("operator", "notifications")

    @post("/updates", opt={"roles": OPERATOR}, status_code=201,
          summary="Post an info-sharing-site update; active admin addresses are mailed unless noNotice")
    async def post_update(self, data: JSONBody[SiteUpdateIn], services: NamedDependency[Services],
                          request: Request[Any, Any, Any]) -> SiteUpdateOut:
        reply = await services.call("notify", "POST", "/internal/info-site/updates", caller=current_caller(request),
                                    json=msgspec.to_builtins(data), request_id=request_id(request))
        return msgspec.convert(reply, SiteUpdateOut)


CONTROLLERS: list[type] = [NotificationPreferencesController, AdminContactsController,
                           AdminContactConfirmController, InfoSiteController]
