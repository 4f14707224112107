"""What several CLI tests need: databases of the test's own, and a database that refuses every connection."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import DatabaseDown
from pymongo import MongoClient

from kagi_shared.settings import Settings


@pytest.fixture
def own_prefix(settings: Settings) -> Iterator[str]:
    """A database prefix (``KAGI_MONGO_DB_PREFIX``) of this test's own: what the command creates stays out of every
    other test's databases, and is dropped afterwards."""
    prefix = f"clitest{uuid.uuid4().hex[:8]}"
    try:
        yield prefix
    finally:
        with MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=3000) as client:
            for name in client.list_database_names():
                if name.startswith(prefix):
                    client.drop_database(name)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port bound but not listening: connections are refused, and no other program can take it."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    with held:
        yield held.getsockname()[1]


@pytest.fixture
def database_down(tmp_path: Path, refused_port: int) -> DatabaseDown:
    return DatabaseDown(refused_port, {"KAGI_VAR_DIR": str(tmp_path),
                                       "MONGODB_URI": f"mongodb://127.0.0.1:{refused_port}",
                                       "KAGI_MONGO_SERVER_SELECTION_TIMEOUT_MS": "300"})
