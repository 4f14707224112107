"""One sender per channel: the dispatcher picks by the delivery's channel.

``send`` raises ``PermanentError`` when retrying cannot help (the message cannot be built,
the server refused the recipient for good), ``ServerUnavailable`` when the server takes no
mail at all right now (no attempt is spent); anything else is a temporary refusal of this
message, retried until the delivery's attempts run out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import Message
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

    def message_for(self, delivery_id: str, recipient: str, category: str, rendered: Rendered) -> Message:
        """From: the template's own sender if it has one (seed: the authentication system's notices), else
        the default."""
        return build_message(delivery_id=delivery_id, sender=rendered.sender or self.settings.smtp.sender,
                             recipient=recipient, rendered=rendered, when_rfc2822=format_datetime(datetime.now(UTC)),
                             unsubscribe_url=unsubscribe_url(self.settings, category))

    async def send(self, delivery: Delivery, rendered: Rendered) -> None:
        try:
            message = self.message_for(delivery.id, delivery.recipient, delivery.category, rendered)
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
