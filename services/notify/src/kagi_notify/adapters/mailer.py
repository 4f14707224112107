"""Mail out through aiosmtplib to ``SMTP_URL`` (STARTTLS and auth when the URL asks for them)."""

from __future__ import annotations

from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.utils import format_datetime, parseaddr
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
                  unsubscribe_url: str | None) -> Message:
    """A plain-text UTF-8 mail. Built with the compat32 classes: the same bytes as ``EmailMessage`` for a
    plain-text mail at a fifth of the CPU, which is what bounds the dispatcher on a small machine."""
    # Derived from the delivery id, so a retried send carries the same Message-ID and receivers can dedupe.
    # (make_msgid would add the time and a random number, giving each attempt a new id.)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "kagi.example.jp"
    headers = {
        "From": sender,
        "To": recipient,
        "Date": when_rfc2822,
        "Message-ID": f"<{delivery_id}@{domain}>",
        "Auto-Submitted": "auto-generated",
        "X-Kagi-Delivery-Id": delivery_id,
    }
    if unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    for name, value in [*headers.items(), ("Subject", rendered.subject)]:
        if "\r" in value or "\n" in value:
            raise ValueError(f"line break in the {name} header")
    message = MIMEText(rendered.body, "plain", "utf-8")
    message["Subject"] = Header(rendered.subject, "utf-8")
    for name, value in headers.items():
        message[name] = value
    return message


class PermanentError(Exception):
    """The server refused this message for good (unknown mailbox …): retrying cannot help."""


# 550 mailbox unavailable, 551 user not local, 553 mailbox name not allowed: about this recipient only.
# Other 5xx (auth, relay policy) are about the whole setup; they are retried like an outage.
_PERMANENT_CODES = frozenset({550, 551, 553})


class SmtpMailer:
    def __init__(self, target: SmtpTarget, timeout_s: float) -> None:
        self.target = target
        self.timeout = timeout_s

    async def send(self, message: Message) -> None:
        t = self.target
        try:
            await aiosmtplib.send(
                message, hostname=t.host, port=t.port, username=t.username, password=t.password,
                start_tls=t.starttls if not t.implicit_tls else False, use_tls=t.implicit_tls, timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(r.code >= 500 for r in exc.recipients):  # 4xx (greylisting, full mailbox) is retried
                raise PermanentError(f"recipient refused: {exc}") from exc
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code in _PERMANENT_CODES:
                raise PermanentError(f"SMTP {exc.code}: {exc.message}") from exc
            raise


__all__ = ["PermanentError", "SmtpMailer", "SmtpTarget", "build_message", "format_datetime"]
