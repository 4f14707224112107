"""What invite's use cases write to the outbox beside their data: events on ``invite.events`` and the mails
they ask notify for (one builder per kind, so the source, topic and category are named once)."""

from __future__ import annotations

from datetime import datetime

from kagi_shared.events import Event, new_envelope
from kagi_shared.jst import jp_datetime
from kagi_shared.mongo import Tx
from kagi_shared.notifications import request_notification
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from kagi_shared.topics import INVITE_EVENTS

SOURCE = "kagi/invite"


def publish_event(tx: Tx, event: Event, subject: str, correlation_id: str | None) -> None:
    tx.publish(INVITE_EVENTS.name, new_envelope(event, source=SOURCE, subject=subject, correlation_id=correlation_id))


def request_removal_mails(tx: Tx, settings: Settings, template: str, removed_email: str, removed_id: str,
                          remover: Caller, variables: dict[str, str], now: datetime,
                          correlation_id: str | None) -> None:
    """A removed access is told to both sides: the account that lost it and the owner who removed it."""
    variables = {**variables, "removed_at": jp_datetime(now)}
    request_mail(tx, settings, template, removed_email, variables, correlation_id, removed_id)
    request_mail(tx, settings, template, remover.email, variables, correlation_id, remover.account_id)


def request_mail(tx: Tx, settings: Settings, template: str, to: str, variables: dict[str, str],
                 correlation_id: str | None, account_id: str | None = None) -> None:
    """An invitation-category mail; an account without an address gets none."""
    if to:
        request_notification(tx, settings.security.notify_key, source=SOURCE, template=template, recipient=to,
                             category="invitation", account_id=account_id, variables=variables,
                             correlation_id=correlation_id)
