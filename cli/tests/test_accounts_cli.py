"""`kagi accounts create`: operator and support accounts enrolled by mail; no password on the line or in output."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from pymongo import MongoClient

from kagi_lifecycle.service.enrolment import UNSET_PASSWORD
from kagi_shared.settings import Settings

KAGI = [sys.executable, "-m", "kagi_cli.main"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KAGI, *args], capture_output=True, text=True, timeout=120,  # noqa: S603
                          env={**os.environ, **(env or {})})


def test_create_without_a_reachable_database_is_one_line(tmp_path: Path) -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    port = held.getsockname()[1]
    with held:
        result = run("accounts", "create", "--role", "operator", "--email", "ops@kagi.example.jp", "--name", "運用",
                     env={"KAGI_VAR_DIR": str(tmp_path), "MONGODB_URI": f"mongodb://127.0.0.1:{port}",
                          "KAGI_MONGO_SERVER_SELECTION_TIMEOUT_MS": "300"})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"kagi: cannot reach the database at 127.0.0.1:{port} (ServerSelectionTimeoutError); "
        "is it up? ('kagi infra up')"]


def test_create_stores_a_pending_account_and_queues_the_two_mails(settings: Settings) -> None:
    prefix = f"clitest{uuid.uuid4().hex[:8]}"
    env = {"KAGI_MONGO_DB_PREFIX": prefix}
    try:
        created = run("accounts", "create", "--role", "support", "--email", "Desk@kagi.example.jp",
                      "--name", "サポート 花子", env=env)
        again = run("accounts", "create", "--role", "support", "--email", "desk@kagi.example.jp", "--name", "x",
                    env=env)
        wrong = run("accounts", "create", "--role", "owner", "--email", "x@kagi.example.jp", "--name", "x", env=env)
        with MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=3000) as client:
            db = client[f"{prefix}_lifecycle"]
            account = db["accounts"].find_one({"login_id": "desk@kagi.example.jp"})
            mails = [row for row in db["outbox"].find({"topic": "notify.requests"})]
    finally:
        with MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=3000) as client:
            for name in client.list_database_names():
                if name.startswith(prefix):
                    client.drop_database(name)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created support desk@kagi.example.jp (account ")
    assert "one-time password were mailed to Desk@kagi.example.jp" in created.stdout
    assert account is not None and account["status"] == "pending_enrolment" and account["roles"] == ["support"]
    assert account["password_hash"] == UNSET_PASSWORD  # no password exists until the holder enrols
    assert len(mails) == 2  # the guide with the URL, then the one-time password (through notify)
    assert again.returncode == 1 and again.stderr.splitlines() == [
        "kagi: account.exists: この ID は既に登録されています。 (email: 既に使用されています。)"]
    assert wrong.returncode == 2 and "invalid choice: 'owner'" in wrong.stderr  # argparse refuses the role


def test_clients_create_prints_the_secret_once_and_stores_its_hash(settings: Settings) -> None:
    prefix = f"clitest{uuid.uuid4().hex[:8]}"
    env = {"KAGI_MONGO_DB_PREFIX": prefix}
    try:
        created = run("clients", "create", "--system", "TAXIS", "--redirect-uri", "https://taxis.example.jp/cb",
                      env=env)
        wrong = run("clients", "create", "--system", "TAXIS", "--redirect-uri", "https://taxis.example.jp/cb#x",
                    env=env)
        rotated = run("clients", "rotate-key", env=env)
        with MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=3000) as client:
            db = client[f"{prefix}_lifecycle"]
            stored = list(db["oidc_clients"].find())
            keys = list(db["oidc_keys"].find())
    finally:
        with MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=3000) as client:
            for name in client.list_database_names():
                if name.startswith(prefix):
                    client.drop_database(name)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.split("client_secret", 1)[1].split()[0]
    assert len(stored) == 1 and stored[0]["system"] == "TAXIS" and stored[0]["_id"].startswith("taxis-")
    assert secret not in str(stored) and len(stored[0]["secret_hash"]) == 64
    assert wrong.returncode == 1 and "oidc.client_invalid" in wrong.stderr and "fragment" in wrong.stderr
    assert rotated.returncode == 0 and len(keys) == 1 and "sealed" in keys[0]["private_jwk"]
    assert '"d"' not in str(keys[0]) and "'d'" not in str(keys[0])  # the private key is never stored in clear
