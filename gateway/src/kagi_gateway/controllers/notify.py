"""Notifications: a user's preferences (全体通知), admin contact addresses and info-sharing-site notices."""

from __future__ import annotations

from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from kagi_gateway.deps import ANY_USER, PUBLIC, Call
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
    async def show(self, call: NamedDependency[Call]) -> NotificationPreferencesOut:
        return await call.notify.preferences(call.caller, rid=call.rid)

    @put("/", opt={"roles": ANY_USER}, summary="Switch general notices (全体通知) on or off")
    async def update(self, data: JSONBody[NotificationPreferencesIn],
                     call: NamedDependency[Call]) -> NotificationPreferencesOut:
        return await call.notify.set_preferences(call.caller, data, rid=call.rid)


class AdminContactsController(Controller):
    path = "/api/v1/operator/admin-contacts"
    tags = ("operator", "notifications")

    @get("/", opt={"roles": OPERATOR}, summary="Admin contact addresses (provisional and active)")
    async def index(self, call: NamedDependency[Call]) -> list[AdminContactOut]:
        return await call.notify.admin_contacts(call.caller, rid=call.rid)

    @post("/", opt={"roles": OPERATOR}, status_code=201,
          summary="Register an admin address provisionally and mail it a confirmation link (valid 7 days)")
    async def register(self, data: JSONBody[AdminContactIn], call: NamedDependency[Call]) -> AdminContactOut:
        return await call.notify.register_contact(call.caller, data, rid=call.rid)

    @post("/{contact_id:str}/resend", opt={"roles": OPERATOR}, status_code=200,
          summary="Mail a fresh confirmation link; the previous one stops working")
    async def resend(self, contact_id: FromPath[str], call: NamedDependency[Call]) -> AdminContactOut:
        return await call.notify.resend_link(call.caller, contact_id, rid=call.rid)

    @delete("/{contact_id:str}", opt={"roles": OPERATOR}, status_code=204,
            summary="Remove an admin who left, with their address")
    async def remove(self, contact_id: FromPath[str], call: NamedDependency[Call]) -> None:
        await call.notify.remove_contact(call.caller, contact_id, rid=call.rid)


class AdminContactConfirmController(Controller):
    path = "/api/v1/admin-contacts"
    tags = ("notifications",)

    @post("/confirm", opt={"roles": PUBLIC, "problems": (410,)}, status_code=200,
          summary="Confirm an admin address with the token from its confirmation mail (本登録)")
    async def confirm(self, data: JSONBody[AdminContactConfirmIn], call: NamedDependency[Call]) -> AdminContactOut:
        return await call.notify.confirm_contact(data, rid=call.rid)


class InfoSiteController(Controller):
    path = "/api/v1/operator/info-site"
    tags = ("operator", "notifications")

    @post("/updates", opt={"roles": OPERATOR}, status_code=201,
          summary="Post an info-sharing-site update; active admin addresses are mailed unless noNotice")
    async def post_update(self, data: JSONBody[SiteUpdateIn], call: NamedDependency[Call]) -> SiteUpdateOut:
        return await call.notify.post_update(call.caller, data, rid=call.rid)


CONTROLLERS: list[type] = [NotificationPreferencesController, AdminContactsController,
                           AdminContactConfirmController, InfoSiteController]
