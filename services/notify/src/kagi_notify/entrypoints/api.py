"""Notify's internal API (called by the gateway): delivery log, preferences, admin contacts, site updates."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, delete, get, post, put
from litestar.params import FromPath, JSONBody, Parameter

from kagi_notify.bootstrap import NAME, Notify, bootstrap
from kagi_notify.domain.admin_contacts import AdminContact
from kagi_notify.domain.preferences import MANDATORY_CATEGORIES, OPT_OUT_NOTICE, Preferences
from kagi_shared.contracts.notify import (
    AdminContactConfirmIn,
    AdminContactIn,
    AdminContactOut,
    MailDeliveryOut,
    NotificationPreferencesIn,
    NotificationPreferencesOut,
    SiteUpdateIn,
    SiteUpdateOut,
)
from kagi_shared.service_api import RunningService, ServiceApi, api_entrypoints, caller_as, caller_of, correlation_of
from kagi_shared.settings import Settings


def preferences_out(prefs: Preferences) -> NotificationPreferencesOut:
    return NotificationPreferencesOut(receive_general_notices=prefs.general, always_sent=list(MANDATORY_CATEGORIES),
                          notice=OPT_OUT_NOTICE, updated_at=prefs.updated_at)


def contact_out(c: AdminContact) -> AdminContactOut:
    return AdminContactOut(contact_id=c.id, email=c.email, company=c.company, status=c.status,
                           link_expires_at=c.link_expires_at, links_sent=c.links_sent, created_at=c.created_at,
                           confirmed_at=c.confirmed_at)


def service_api(settings: Settings, notify: Notify | None = None) -> ServiceApi:
    app = RunningService(notify, lambda: bootstrap(settings))

    def operator(request: Request[Any, Any, Any]) -> str:
        return caller_as(request, "operator").account_id

    @get("/internal/deliveries")
    async def deliveries(
        request: Request[Any, Any, Any],
        recipient: Annotated[str, Parameter(min_length=3, max_length=254)],
    ) -> list[MailDeliveryOut]:
        operator(request)
        found = await app().deliveries.for_recipient(recipient)
        return [MailDeliveryOut(delivery_id=d.id, template=d.template, channel=d.channel, recipient=d.recipient,
                            category=d.category, status=d.status, attempts=d.attempts, created_at=d.created_at,
                            sent_at=d.sent_at, last_error=d.last_error) for d in found]

    @get("/internal/preferences")
    async def get_preferences(request: Request[Any, Any, Any]) -> NotificationPreferencesOut:
        return preferences_out(await app().preferences.get(caller_of(request)))

    @put("/internal/preferences")
    async def put_preferences(data: JSONBody[NotificationPreferencesIn],
                              request: Request[Any, Any, Any]) -> NotificationPreferencesOut:
        prefs = await app().preferences.set_general(caller_of(request), data.receive_general_notices)
        return preferences_out(prefs)

    @get("/internal/admin-contacts")
    async def list_contacts(request: Request[Any, Any, Any]) -> list[AdminContactOut]:
        operator(request)
        return [contact_out(c) for c in await app().admin_contacts.all_contacts()]

    @post("/internal/admin-contacts", status_code=201)
    async def register_contact(data: JSONBody[AdminContactIn], request: Request[Any, Any, Any]) -> AdminContactOut:
        operator(request)
        contact = await app().admin_contacts.register(data.email, data.company, correlation_of(request))
        return contact_out(contact)

    @post("/internal/admin-contacts/{contact_id:str}/resend", status_code=200)
    async def resend_link(contact_id: FromPath[str], request: Request[Any, Any, Any]) -> AdminContactOut:
        operator(request)
        return contact_out(await app().admin_contacts.resend(contact_id, correlation_of(request)))

    @delete("/internal/admin-contacts/{contact_id:str}", status_code=204)
    async def remove_contact(contact_id: FromPath[str], request: Request[Any, Any, Any]) -> None:
        operator(request)
        await app().admin_contacts.remove(contact_id)

    @post("/internal/admin-contacts/confirm", status_code=200)
    async def confirm_contact(data: JSONBody[AdminContactConfirmIn]) -> AdminContactOut:
        return contact_out(await app().admin_contacts.confirm(data.token))

    @post("/internal/info-site/updates", status_code=201)
    async def post_update(data: JSONBody[SiteUpdateIn], request: Request[Any, Any, Any]) -> SiteUpdateOut:
        posted_by = operator(request)
        update_id, notified = await app().admin_contacts.post_site_update(
            data.title, data.url, data.no_notice, posted_by, correlation_of(request))
        return SiteUpdateOut(update_id=update_id, no_notice=data.no_notice, notified=notified)

    return app.api(NAME, [deliveries, get_preferences, put_preferences, list_contacts, register_contact,
                          resend_link, remove_contact, confirm_contact, post_update])


create_app, main = api_entrypoints(NAME, service_api)


if __name__ == "__main__":
    main()
