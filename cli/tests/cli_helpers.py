"""Helpers the CLI tests share (imported as ``cli_helpers``; their fixtures are in ``conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

KAGI = [sys.executable, "-m", "kagi_cli.main"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``kagi ARGS`` in a process of its own, with ``env`` over this one's environment."""
    return subprocess.run([*KAGI, *args], capture_output=True, text=True, timeout=120,  # noqa: S603
                          env={**os.environ, **(env or {})})


@dataclass(frozen=True)
class DatabaseDown:
    port: int
    env: dict[str, str]
    """A command's environment whose database (``MONGODB_URI``) is the refusing port, given up on after 300 ms."""

    @property
    def refusal(self) -> str:
        """The one line a command prints when it cannot reach that database."""
        return (f"kagi: cannot reach the database at 127.0.0.1:{self.port} (ServerSelectionTimeoutError); "
                "is it up? ('kagi infra up')")
