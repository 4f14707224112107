"""Queue a mail through notify (``notify.requests``) in the caller's transaction."""

from __future__ import annotations

from kagi_shared.events import new_envelope
from kagi_shared.events import notify as nev
from kagi_shared.events.notify import Category
from kagi_shared.mongo import Tx
from kagi_shared.settings import Settings
from kagi_shared.topics import NOTIFY_REQUESTS

SOURCE = "kagi/lifecycle"


def send_mail(tx: Tx, settings: Settings, template: str, recipient: str, variables: dict[str, str], *,
              account_id: str | None, category: Category = "lifecycle", correlation_id: str | None = None) -> None:
    tx.publish(NOTIFY_REQUESTS.name, new_envelope(
        nev.sealed_request(settings.security.notify_key, nev.Notice(
            template=template, channel="mail", recipient=recipient, category=category, variables=variables,
            account_id=account_id)),
        source=SOURCE, subject=recipient, correlation_id=correlation_id))
