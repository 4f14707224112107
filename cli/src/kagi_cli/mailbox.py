"""Read the mails the embedded SMTP sink stored under ``var/mail/``."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path


@dataclass(frozen=True)
class Mail:
    path: Path
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"] or "")

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def date(self) -> str:
        return str(self.message["Date"] or "")

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


def read_mail(path: Path) -> Mail:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return Mail(path, message)


def mailbox(directory: Path) -> list[Mail]:
    if not directory.exists():
        return []
    return [read_mail(p) for p in sorted(directory.glob("*.eml"))]
