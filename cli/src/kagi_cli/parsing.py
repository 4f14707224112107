"""Argument-parser scaffolding shared by the ``kagi`` command modules."""

from __future__ import annotations

import argparse
from typing import Any


def command_group(sub: Any, name: str, *, help: str, description: str) -> Any:
    """Add ``kagi NAME ACTION …``: a command whose actions are required sub-commands; returns the actions'
    sub-parsers, to which each action is added."""
    group: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description)
    return group.add_subparsers(dest="action", required=True, metavar="ACTION")
