"""Notify's internal API: the delivery log, preferences (全体通知), admin contacts, info-sharing-site updates."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import msgspec

from kagi_shared.contracts import Body, Reply, ServiceClient

if TYPE_CHECKING:
    from kagi_shared.service_api import Caller


class MailDeliveryOut(Reply):
    delivery_id: str
    template: str
    channel: str
    recipient: str
    category: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class NotificationPreferencesIn(Body):
    receive_general_notices: bool
    """全体通知を受け取る: general notices, disaster notices (断水情報等) included."""


class NotificationPreferencesOut(Reply):
    receive_general_notices: bool
    always_sent: list[str]
    """Categories that cannot be switched off."""
    notice: str
    """What switching off means, in Japanese: disaster notices stop too."""
    updated_at: datetime | None


class AdminContactIn(Body):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    company: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class AdminContactOut(Reply):
    contact_id: str
    email: str
    company: str | None
    status: str
    link_expires_at: datetime | None
    links_sent: int
    created_at: datetime
    confirmed_at: datetime | None


class AdminContactConfirmIn(Body):
    token: Annotated[str, msgspec.Meta(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")]


class SiteUpdateIn(Body):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"^https?://\S+$")]
    no_notice: bool = False
    """掲載情報更新通知メールの送信は不要: post without mailing anyone."""


class SiteUpdateOut(Reply):
    update_id: str
    no_notice: bool
    notified: int


class NotifyClient(ServiceClient):
    service = "notify"

    async def deliveries(self, caller: Caller, recipient: str, *, rid: str | None = None) -> list[MailDeliveryOut]:
        return await self._call(list[MailDeliveryOut], "GET", "/internal/deliveries", caller=caller,
                                params={"recipient": recipient}, rid=rid)

    async def preferences(self, caller: Caller, *, rid: str | None = None) -> NotificationPreferencesOut:
        return await self._call(NotificationPreferencesOut, "GET", "/internal/preferences", caller=caller, rid=rid)

    async def set_preferences(self, caller: Caller, data: NotificationPreferencesIn, *,
                              rid: str | None = None) -> NotificationPreferencesOut:
        return await self._call(NotificationPreferencesOut, "PUT", "/internal/preferences", caller=caller, body=data,
                                rid=rid)

    async def admin_contacts(self, caller: Caller, *, rid: str | None = None) -> list[AdminContactOut]:
        return await self._call(list[AdminContactOut], "GET", "/internal/admin-contacts", caller=caller, rid=rid)

    async def register_contact(self, caller: Caller, data: AdminContactIn, *,
                               rid: str | None = None) -> AdminContactOut:
        return await self._call(AdminContactOut, "POST", "/internal/admin-contacts", caller=caller, body=data,
                                rid=rid)

    async def resend_link(self, caller: Caller, contact_id: str, *, rid: str | None = None) -> AdminContactOut:
        return await self._call(AdminContactOut, "POST", "/internal/admin-contacts/{contact_id}/resend",
                                contact_id=contact_id, caller=caller, rid=rid)

    async def remove_contact(self, caller: Caller, contact_id: str, *, rid: str | None = None) -> None:
        await self._send("DELETE", "/internal/admin-contacts/{contact_id}", contact_id=contact_id, caller=caller,
                         rid=rid)

    async def confirm_contact(self, data: AdminContactConfirmIn, *, rid: str | None = None) -> AdminContactOut:
        return await self._call(AdminContactOut, "POST", "/internal/admin-contacts/confirm", body=data, rid=rid)

    async def post_update(self, caller: Caller, data: SiteUpdateIn, *, rid: str | None = None) -> SiteUpdateOut:
        return await self._call(SiteUpdateOut, "POST", "/internal/info-site/updates", caller=caller, body=data,
                                rid=rid)
