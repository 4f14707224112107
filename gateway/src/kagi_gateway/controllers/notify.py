"""Notifications: a user's preferences (全体通知), admin contact addresses and info-sharing-site notices."""

from __future__ import annotations

from litestar import delete, get, post, put

from kagi_gateway.deps import ANY_USER, PUBLIC
from kagi_gateway.forward import ApiController, forward
from kagi_shared.contracts.notify import NotifyClient

OPERATOR = ("operator",)


class NotificationPreferencesController(ApiController):
    path = "/api/v1/me/notification-preferences"
    tags = ("notifications",)

    show = forward(get("/", opt={"roles": ANY_USER},
                       summary="The caller's notification preferences"), NotifyClient.preferences)

    update = forward(put("/", opt={"roles": ANY_USER},
                         summary="Switch general notices (全体通知) on or off"), NotifyClient.set_preferences)


class AdminContactsController(ApiController):
    path = "/api/v1/operator/admin-contacts"
    tags = ("operator", "notifications")

    index = forward(get("/", opt={"roles": OPERATOR},
                        summary="Admin contact addresses (provisional and active)"), NotifyClient.admin_contacts)

    register = forward(
        post("/", opt={"roles": OPERATOR}, status_code=201,
             summary="Register an admin address provisionally and mail it a confirmation link (valid 7 days)"),
        NotifyClient.register_contact)

    resend = forward(post("/{contact_id:str}/resend", opt={"roles": OPERATOR}, status_code=200,
                          summary="Mail a fresh confirmation link; the previous one stops working"),
                     NotifyClient.resend_link)

    remove = forward(delete("/{contact_id:str}", opt={"roles": OPERATOR}, status_code=204,
                            summary="Remove an admin who left, with their address"), NotifyClient.remove_contact)


class AdminContactConfirmController(ApiController):
    path = "/api/v1/admin-contacts"
    tags = ("notifications",)

    confirm = forward(post("/confirm", opt={"roles": PUBLIC, "problems": (410,)}, status_code=200,
                           summary="Confirm an admin address with the token from its confirmation mail (本登録)"),
                      NotifyClient.confirm_contact)


class InfoSiteController(ApiController):
    path = "/api/v1/operator/info-site"
    tags = ("operator", "notifications")

    post_update = forward(
        post("/updates", opt={"roles": OPERATOR}, status_code=201,
             summary="Post an info-sharing-site update; active admin addresses are mailed unless noNotice"),
        NotifyClient.post_update)


CONTROLLERS: list[type] = [NotificationPreferencesController, AdminContactsController,
                           AdminContactConfirmController, InfoSiteController]
