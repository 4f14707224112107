"""Notify's inbound requests (``notify.requests``) and its delivery results (``notify.deliveries``).

A request carries what a template needs, secrets such as one-time codes included, which
is why it travels on its own topic that only notify may read (ACLs in production)
rather than on the emitting service's public event topic.
"""

from __future__ import annotations

from typing import Literal

from kagi_shared.events.envelope import Event, register

Channel = Literal["mail", "sms"]
Category = Literal["security", "lifecycle", "invitation", "usage", "general", "admin"]
"""``general`` (全体通知, disaster notices included) is the only category a user can switch off."""


class NotificationRequested(Event, frozen=True, tag="kagi.notify.notification_requested"):
    template: str
    channel: Channel
    recipient: str
    category: Category
    variables: dict[str, str]
    account_id: str | None = None


class NotificationDelivered(Event, frozen=True, tag="kagi.notify.notification_delivered"):
    delivery_id: str
    template: str
    channel: Channel
    recipient: str
    attempts: int


class NotificationFailed(Event, frozen=True, tag="kagi.notify.notification_failed"):
    delivery_id: str
    template: str
    channel: Channel
    recipient: str
    attempts: int
    reason: str


class NotificationSkipped(Event, frozen=True, tag="kagi.notify.notification_skipped"):
    """Recorded but never sent: the recipient switched off this category (全体通知)."""

    delivery_id: str
    template: str
    channel: Channel
    recipient: str
    reason: str


register(NotificationRequested, NotificationDelivered, NotificationFailed, NotificationSkipped)
