"""`kagi accounts create`: operator and support accounts enrolled by mail; no password on the line or in output."""

from __future__ import annotations

from cli_helpers import DatabaseDown, run
from pymongo import MongoClient

from kagi_lifecycle.service.enrolment import UNSET_PASSWORD
from kagi_shared.settings import Settings


def test_create_without_a_reachable_database_is_one_line(database_down: DatabaseDown) -> None:
    result = run("accounts", "create", "--role", "operator", "--email", "ops@kagi.example.jp", "--name", "運用",
                 env=database_down.env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [database_down.refusal]


def test_create_stores_a_pending_account_and_queues_the_two_mails(settings: Settings, own_prefix: str) -> None:
    env = {"KAGI_MONGO_DB_PREFIX": own_prefix}
    created = run("accounts", "create", "--role", "support", "--email", "Desk@kagi.example.jp",
                  "--name", "サポート 花子", env=env)
    again = run("accounts", "create", "--role", "support", "--email", "desk@kagi.example.jp", "--name", "x", env=env)
    wrong = run("accounts", "create", "--role", "owner", "--email", "x@kagi.example.jp", "--name", "x", env=env)
    with MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=3000) as client:
        db = client[f"{own_prefix}_lifecycle"]
        account = db["accounts"].find_one({"login_id": "desk@kagi.example.jp"})
        mails = [row for row in db["outbox"].find({"topic": "notify.requests"})]
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created support desk@kagi.example.jp (account ")
    assert "one-time password were mailed to Desk@kagi.example.jp" in created.stdout
    assert account is not None and account["status"] == "pending_enrolment" and account["roles"] == ["support"]
    assert account["password_hash"] == UNSET_PASSWORD  # no password exists until the holder enrols
    assert len(mails) == 2  # the guide with the URL, then the one-time password (through notify)
    assert again.returncode == 1 and again.stderr.splitlines() == [
        "kagi: account.exists: この ID は既に登録されています。 (email: 既に使用されています。)"]
    assert wrong.returncode == 2 and "invalid choice: 'owner'" in wrong.stderr  # argparse refuses the role


def test_clients_create_prints_the_secret_once_and_stores_its_hash(settings: Settings, own_prefix: str) -> None:
    env = {"KAGI_MONGO_DB_PREFIX": own_prefix}
    created = run("clients", "create", "--system", "TAXIS", "--redirect-uri", "https://taxis.example.jp/cb", env=env)
    wrong = run("clients", "create", "--system", "TAXIS", "--redirect-uri", "https://taxis.example.jp/cb#x", env=env)
    rotated = run("clients", "rotate-key", env=env)
    with MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=3000) as client:
        db = client[f"{own_prefix}_lifecycle"]
        stored = list(db["oidc_clients"].find())
        keys = list(db["oidc_keys"].find())
    assert created.returncode == 0, created.stderr
    secret = created.stdout.split("client_secret", 1)[1].split()[0]
    assert len(stored) == 1 and stored[0]["system"] == "TAXIS" and stored[0]["_id"].startswith("taxis-")
    assert secret not in str(stored) and len(stored[0]["secret_hash"]) == 64
    assert wrong.returncode == 1 and "oidc.client_invalid" in wrong.stderr and "fragment" in wrong.stderr
    assert rotated.returncode == 0 and len(keys) == 1 and "sealed" in keys[0]["private_jwk"]
    assert '"d"' not in str(keys[0]) and "'d'" not in str(keys[0])  # the private key is never stored in clear
