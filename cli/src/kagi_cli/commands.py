"""What every ``kagi`` command module shares: how a command with actions (``kagi NAME ACTION …``) is declared."""

from __future__ import annotations

import argparse
from typing import TypeAlias

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def command_group(sub: Subparsers, name: str, help: str, description: str) -> Subparsers:
    """The command ``kagi NAME``, whose actions are sub-commands (one of them is required)."""
    group = sub.add_parser(name, help=help, description=description)
    return group.add_subparsers(dest="action", required=True, metavar="ACTION")
