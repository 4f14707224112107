"""Notify's inbound requests (``notify.requests``) and its delivery results (``notify.deliveries``).

A request carries what a template needs, secrets such as one-time codes and reset links included, which
is why it travels on its own topic that only notify may read (ACLs in production) rather than on the
emitting service's public event topic, and why its variables travel sealed (``kagi_shared.sealing``,
``KAGI_SECURITY_NOTIFY_KEY``): the topic and its dead-letter topic keep what they hold for days, so
what they hold must be no usable code or link. Producers build a ``Notice`` and publish
``sealed_request(key, notice)``; notify reads it back with ``opened``.
"""

from __future__ import annotations

import functools
from typing import Literal

import msgspec

from kagi_shared.events.envelope import Event, register
from kagi_shared.sealing import Sealer

Channel = Literal["mail", "sms"]
Category = Literal["security", "lifecycle", "invitation", "usage", "general", "admin"]
"""``general`` (全体通知, disaster notices included) is the only category a user can switch off."""


class NotificationRequested(Event, frozen=True, tag="kagi.notify.notification_requested"):
    template: str
    channel: Channel
    recipient: str
    category: Category
    sealed: str
    """The template's variables as JSON, sealed to this request's other fields (``sealed_request``)."""
    account_id: str | None = None


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """A notification as its producer means it and notify reads it, variables in clear: never on a topic."""

    template: str
    channel: Channel
    recipient: str
    category: Category
    variables: dict[str, str]
    account_id: str | None = None


SEAL_PURPOSE = "notify.requests variables"
_variables = msgspec.json.Decoder(dict[str, str])


@functools.lru_cache(maxsize=4)
def _sealer(key: str) -> Sealer:
    return Sealer(key, SEAL_PURPOSE)


def _fields(template: str, channel: str, recipient: str, category: str, account_id: str | None) -> bytes:
    # The clear fields bind the ciphertext: a code sealed for one recipient or template opens for no other.
    return msgspec.json.encode([template, channel, recipient, category, account_id])


def sealed_request(key: str, notice: Notice) -> NotificationRequested:
    aad = _fields(notice.template, notice.channel, notice.recipient, notice.category, notice.account_id)
    return NotificationRequested(template=notice.template, channel=notice.channel, recipient=notice.recipient,
                                 category=notice.category, account_id=notice.account_id,
                                 sealed=_sealer(key).seal(msgspec.json.encode(notice.variables), aad))


def opened(key: str, request: NotificationRequested) -> Notice:
    """The request's notice; ``SealError`` if it was sealed under another key or altered on the way."""
    aad = _fields(request.template, request.channel, request.recipient, request.category, request.account_id)
    variables = _variables.decode(_sealer(key).open(request.sealed, aad))
    return Notice(template=request.template, channel=request.channel, recipient=request.recipient,
                  category=request.category, variables=variables, account_id=request.account_id)


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
