"""The embedded SMTP sink: accepts every mail and stores it as ``var/mail/<time>-<id>.eml``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class MaildirHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.directory / f".{name}.tmp"
        # Write then rename, so a reader never sees half a mail.
        tmp.write_bytes(b"X-Sink-Rcpt-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n" + content)
        os.replace(tmp, self.directory / name)
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, directory: Path) -> None:
    handler = MaildirHandler(directory)
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(handler, hostname="kagi-smtp-sink", data_size_limit=10 * 1024 * 1024)

    server = await loop.create_server(factory, host=host, port=port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="SMTP sink that stores mails as .eml files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.dir))


if __name__ == "__main__":
    main()
