"""SMS out through a pluggable sender. The embedded setup writes each SMS as a JSON file.

A real SMS gateway is one more class with ``async send(message)``, chosen by
``KAGI_NOTIFY_SMS_SENDER``; nothing else changes.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import msgspec


class SmsMessage(msgspec.Struct, rename="camel", kw_only=True):
    delivery_id: str
    to: str
    body: str
    sender: str
    created_at: datetime


class SmsSender(Protocol):
    async def send(self, message: SmsMessage) -> None: ...


class FileSmsSender:
    """Writes ``<dir>/<time>-<delivery id>.json`` (write, then rename: a reader never sees half a file)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: SmsMessage) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: SmsMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{message.delivery_id}.json"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(message)))
        os.replace(tmp, self.directory / name)


def read_sms(directory: Path) -> list[SmsMessage]:
    """Every SMS the file sender wrote, oldest first (for the CLI and tests)."""
    if not directory.exists():
        return []
    return [msgspec.json.decode(p.read_bytes(), type=SmsMessage) for p in sorted(directory.glob("*.json"))]
