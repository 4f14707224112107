"""Queue a mail through notify (``notify.requests``) in the caller's transaction."""

from __future__ import annotations

from kagi_shared.events.notify import Category
from kagi_shared.mongo import Tx
from kagi_shared.notifications import request_notification
from kagi_shared.settings import Settings

SOURCE = "kagi/lifecycle"


def send_mail(tx: Tx, settings: Settings, template: str, recipient: str, variables: dict[str, str], *,
              account_id: str | None, category: Category = "lifecycle", correlation_id: str | None = None) -> None:
    request_notification(tx, settings.security.notify_key, source=SOURCE, template=template, recipient=recipient,
                         variables=variables, category=category, account_id=account_id, correlation_id=correlation_id)
