"""One sender per channel: the dispatcher picks by the delivery's channel.

``send`` raises ``PermanentError`` when retrying cannot help (the message cannot be built,
the server refused the recipient for good); anything else is treated as an outage and retried.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Protocol

from kagi_notify.adapters.mailer import PermanentError, SmtpMailer, build_message
from kagi_notify.adapters.sms import SmsMessage, SmsSender
from kagi_notify.domain.deliveries import Delivery
from kagi_notify.domain.templates import Rendered
from kagi_shared.settings import Settings


class Channel(Protocol):
    async def send(self, delivery: Delivery, rendered: Rendered) -> None: ...


def unsubscribe_url(settings: Settings, category: str) -> str | None:
    """Only general notices can be switched off, so only they carry List-Unsubscribe."""
    return f"{settings.brand.portal_url.rstrip('/')}/settings/notifications" if category == "general" else None


class MailChannel:
    def __init__(self, mailer: SmtpMailer, settings: Settings) -> None:
        self.mailer = mailer
        self.settings = settings

    async def send(self, delivery: Delivery, rendered: Rendered) -> None:
        try:
            message = build_message(delivery_id=delivery.id, sender=self.settings.smtp.sender,
                                    recipient=delivery.recipient, rendered=rendered,
                                    when_rfc2822=format_datetime(datetime.now(UTC)),
                                    unsubscribe_url=unsubscribe_url(self.settings, delivery.category))
        except (ValueError, TypeError) as exc:  # e.g. a line break in a header: the same every time
            raise PermanentError(f"message cannot be built: {exc}") from exc
        await self.mailer.send(message)


class SmsChannel:
    def __init__(self, sender: SmsSender, settings: Settings) -> None:
        self.sender = sender
        self.settings = settings

    async def send(self, delivery: Delivery, rendered: Rendered) -> None:
        await self.sender.send(SmsMessage(delivery_id=delivery.id, to=delivery.recipient, body=rendered.body.strip(),
                                          sender=self.settings.brand.name, created_at=datetime.now(UTC)))
