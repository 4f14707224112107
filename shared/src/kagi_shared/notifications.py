"""Asking notify for a mail or SMS: one request on ``notify.requests``, published in the caller's transaction.

Every service builds its requests here, so the envelope (source, subject, correlation id) is made one way,
the variables are always sealed under the notify key (``events.notify.sealed_request``), and a field added
to the request is added once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kagi_shared.events.envelope import new_envelope
from kagi_shared.events.notify import Category, Channel, Notice, sealed_request
from kagi_shared.topics import NOTIFY_REQUESTS

if TYPE_CHECKING:
    from kagi_shared.mongo import Tx


def request_notification(
    tx: Tx,
    notify_key: str,
    *,
    source: str,
    template: str,
    recipient: str,
    variables: dict[str, str],
    category: Category,
    channel: Channel = "mail",
    account_id: str | None = None,
    subject: str | None = None,
    correlation_id: str | None = None,
) -> None:
    """Queue one notification; ``subject`` (the envelope's, for the partition key) defaults to the recipient."""
    notice = Notice(template=template, channel=channel, recipient=recipient, category=category, variables=variables,
                    account_id=account_id)
    tx.publish(NOTIFY_REQUESTS.name, new_envelope(
        sealed_request(notify_key, notice), source=source,
        subject=subject if subject is not None else recipient, correlation_id=correlation_id))
