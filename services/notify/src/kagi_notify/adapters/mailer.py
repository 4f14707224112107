"""Mail out through aiosmtplib to ``SMTP_URL`` (STARTTLS and auth when the URL asks for them)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from kagi_notify.domain.templates import Rendered


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    implicit_tls: bool = False

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"SMTP_URL must look like smtp://host:port or smtps://host:port, got {url!r}")
        query = parse_qs(parts.query)
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
            implicit_tls=implicit,
        )


def build_message(*, delivery_id: str, sender: str, recipient: str, rendered: Rendered, when_rfc2822: str,
                  unsubscribe_url: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = when_rfc2822
    # Derived from the delivery id, so a retried send carries the same Message-ID and receivers can dedupe.
    message["Message-ID"] = make_msgid(idstring=delivery_id.replace("-", ""), domain="kagi.example.jp")
    message["Auto-Submitted"] = "auto-generated"
    message["X-Kagi-Delivery-Id"] = delivery_id
    if unsubscribe_url:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message.set_content(rendered.body, charset="utf-8")
    return message


class SmtpMailer:
    def __init__(self, target: SmtpTarget, timeout_s: float) -> None:
        self.target = target
        self.timeout = timeout_s

    async def send(self, message: EmailMessage) -> None:
        t = self.target
        await aiosmtplib.send(
            message, hostname=t.host, port=t.port, username=t.username, password=t.password,
            start_tls=t.starttls if not t.implicit_tls else False, use_tls=t.implicit_tls, timeout=self.timeout,
        )


__all__ = ["SmtpMailer", "SmtpTarget", "build_message", "format_datetime"]
