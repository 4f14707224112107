"""Mail out through aiosmtplib to ``SMTP_URL`` (STARTTLS and auth when the URL asks for them)."""

from __future__ import annotations

from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.utils import format_datetime, parseaddr
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit, urlunsplit

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
        """``smtp://[user[:password]@]host[:port][?starttls=1]`` or ``smtps://…`` (TLS from the first byte).

        User and password are URL-escaped (``%40`` for ``@``). Errors name ``SMTP_URL`` and never echo
        the password.
        """
        parts = urlsplit(url)
        shown = _redacted(parts)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"SMTP_URL must look like smtp://host:port or smtps://host:port, got {shown!r}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"SMTP_URL has a bad port (1-65535), got {shown!r}") from None
        if port == 0:
            raise ValueError(f"SMTP_URL has a bad port (1-65535), got {shown!r}")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - {"starttls"}
        if unknown:
            raise ValueError(f"SMTP_URL has unknown parameters {sorted(unknown)} (only starttls), got {shown!r}")
        flag = query.get("starttls", ["0"])[-1].lower()
        if flag not in _TRUE | _FALSE:
            raise ValueError(f"SMTP_URL starttls must be 1/true/yes or 0/false/no, got {shown!r}")
        implicit = parts.scheme == "smtps"
        starttls = flag in _TRUE
        if implicit and starttls:
            raise ValueError(f"SMTP_URL: smtps:// is TLS already, starttls does not apply, got {shown!r}")
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=starttls,
            implicit_tls=implicit,
        )


# A bare ``?starttls`` is a flag: on.
_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _redacted(parts: SplitResult) -> str:
    if parts.password is None:
        return urlunsplit(parts)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


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
    # compat32 accepts a Header here (encoded as UTF-8 words); typeshed types MIMEText header values as str only.
    message["Subject"] = Header(rendered.subject, "utf-8")  # type: ignore[assignment]
    for name, value in headers.items():
        message[name] = value
    return message


class PermanentError(Exception):
    """The server refused this message for good (unknown mailbox …): retrying cannot help."""


class ServerUnavailable(Exception):
    """The server takes no mail at all right now (unreachable, timed out, 421, our login or TLS refused).

    No message is at fault, so this spends none of a delivery's attempts: the dispatcher holds the channel
    and tries again later, for as long as it takes.
    """


# 550 mailbox unavailable, 551 user not local, 553 mailbox name not allowed: about this recipient only.
_PERMANENT_CODES = frozenset({550, 551, 553})
# RFC 5321 4.2.2: 421 means the service is closing the channel, whatever command it answers.
_SERVICE_UNAVAILABLE = 421
# Refusals of the greeting, EHLO or our credentials are about the whole setup, never about one message.
_SETUP_ERRORS = (aiosmtplib.SMTPConnectResponseError, aiosmtplib.SMTPHeloError, aiosmtplib.SMTPAuthenticationError,
                 aiosmtplib.SMTPNotSupported)


class SmtpMailer:
    """Sends one message; raises ``PermanentError``, ``ServerUnavailable``, or anything else for a temporary
    refusal of this message (4xx for the recipient, a 5xx other than the permanent ones) that spends an attempt."""

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
            codes = {r.code for r in exc.recipients}
            if _SERVICE_UNAVAILABLE in codes:
                raise ServerUnavailable(f"SMTP {_SERVICE_UNAVAILABLE}: {exc}") from exc
            if all(code >= 500 for code in codes):  # 4xx (greylisting, full mailbox) is retried
                raise PermanentError(f"recipient refused: {exc}") from exc
            raise
        except _SETUP_ERRORS as exc:
            raise ServerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == _SERVICE_UNAVAILABLE:
                raise ServerUnavailable(f"SMTP {exc.code}: {exc.message}") from exc
            if exc.code in _PERMANENT_CODES:
                raise PermanentError(f"SMTP {exc.code}: {exc.message}") from exc
            raise
        except (OSError, TimeoutError) as exc:
            # Refused, reset or timed-out connections, a server that hung up, a failed TLS handshake
            # (aiosmtplib's SMTPConnectError, SMTPServerDisconnected and SMTPTimeoutError are among these).
            raise ServerUnavailable(f"{type(exc).__name__}: {exc}") from exc


__all__ = ["PermanentError", "ServerUnavailable", "SmtpMailer", "SmtpTarget", "build_message", "format_datetime"]
