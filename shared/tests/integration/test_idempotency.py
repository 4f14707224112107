"""The services' ``Idempotency-Key`` handling on a real database: whose answer a key names, what is replayed, what
runs again."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from litestar import post
from litestar.params import JSONBody
from pymongo import AsyncMongoClient

from kagi_shared import idempotency
from kagi_shared.mongo import Store, Tx
from kagi_shared.problems import Problem
from kagi_shared.service_api import INTERNAL_TOKEN_HEADER, Caller, ServiceApi, caller_headers, service_app
from kagi_shared.settings import Settings
from tests.support import Proxy


def service(settings: Settings, store: Store,
            release: asyncio.Event | None = None,
            started: asyncio.Event | None = None) -> tuple[httpx.AsyncClient, list[str]]:
    """An internal API whose ``/internal/things`` writes one thing per run in a transaction and answers its
    number; ``/internal/refused`` refuses with 429 before writing anything; ``/internal/slow`` answers once
    ``release`` is set (``started`` is set when it begins)."""
    runs: list[str] = []
    release = release or asyncio.Event()
    started = started or asyncio.Event()

    @post("/internal/things", status_code=201)
    async def create(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        runs.append("things")

        async def work(tx: Tx) -> int:
            await store.db["things"].insert_one({"data": data}, session=tx.session)
            return await store.db["things"].count_documents({}, session=tx.session)

        return {"number": await store.transaction(work), "runId": uuid.uuid4().hex}

    @post("/internal/slow", status_code=201)
    async def slow() -> dict[str, int]:
        runs.append("slow")
        started.set()
        await release.wait()
        return {"run": len(runs)}

    @post("/internal/refused", status_code=201)
    async def refused() -> None:
        runs.append("refused")
        raise Problem(429, "rate_limited", "しばらくしてから再度お試しください。")

    async def ready() -> None:
        await store.ping()

    app = service_app(settings, ServiceApi("idem", [create, slow, refused], ready=ready, database=lambda: store.db))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://idem",
                               headers={INTERNAL_TOKEN_HEADER: settings.security.internal_token})
    return client, runs


def caller(account_id: str) -> dict[str, str]:
    return caller_headers(Caller(account_id=account_id, login_id=f"{account_id}@example.jp", roles=("owner",)))


async def test_a_key_names_one_callers_answer_on_one_route(settings: Settings, store_factory: Any) -> None:
    store: Store = await store_factory("idem")
    await store.ensure_outbox_indexes()
    http, runs = service(settings, store)
    key = {idempotency.HEADER: "same-key"}
    async with http:
        first = await http.post("/internal/things", json={"a": 1}, headers=caller("alice") | key)
        assert first.status_code == 201 and idempotency.REPLAYED_HEADER.lower() not in first.headers
        again = await http.post("/internal/things", json={"a": 1}, headers=caller("alice") | key)
        assert (again.status_code, again.json()) == (201, first.json())
        assert again.headers[idempotency.REPLAYED_HEADER] == "true"
        assert runs == ["things"]

        # Another caller with the same key and body gets an answer of its own, never alice's.
        bob = await http.post("/internal/things", json={"a": 1}, headers=caller("bob") | key)
        assert bob.status_code == 201 and idempotency.REPLAYED_HEADER.lower() not in bob.headers
        assert bob.json()["runId"] != first.json()["runId"]
        # Anonymous callers are told apart by their address.
        for ip in ("192.0.2.1", "192.0.2.2"):
            anonymous = await http.post("/internal/things", json={"a": 1}, headers={"x-kagi-client-ip": ip} | key)
            assert anonymous.status_code == 201 and idempotency.REPLAYED_HEADER.lower() not in anonymous.headers
        assert runs == ["things"] * 4

        reused = await http.post("/internal/things", json={"a": 2}, headers=caller("alice") | key)
        assert (reused.status_code, reused.json()["code"]) == (422, "idempotency.key_reused")
        assert runs == ["things"] * 4

        # A refusal before any write releases the key: the retry runs.
        for _ in range(2):
            answer = await http.post("/internal/refused", json={}, headers=caller("alice") | key)
            assert answer.status_code == 429
        assert runs[-2:] == ["refused", "refused"]

        # Without a key, as before: every attempt runs.
        for _ in range(2):
            assert (await http.post("/internal/things", json={"a": 1}, headers=caller("alice"))).status_code == 201
        assert runs.count("things") == 6

    stored = await store.db[idempotency.COLLECTION].find({}).to_list()
    assert len(stored) == 4 and {doc["state"] for doc in stored} == {"done"}
    # The answer is sealed at rest (an answer may show a secret once).
    assert all(first.json()["runId"] not in doc["answer"] for doc in stored)
    indexes = await store.db[idempotency.COLLECTION].index_information()
    assert any(info.get("expireAfterSeconds") == 0 for info in indexes.values())


async def test_a_claim_committed_with_the_work_is_never_run_again(settings: Settings, store_factory: Any) -> None:
    """The claim is marked in the handler's transaction: a claim left committed without an answer (the process
    died between the commit and storing it) answers 409, it never runs the work a second time."""
    store: Store = await store_factory("idem")
    http, runs = service(settings, store)
    headers = caller("carol") | {idempotency.HEADER: "k-1"}
    async with http:
        committed_at = datetime.now(UTC)
        assert (await http.post("/internal/things", json={"b": 1}, headers=headers)).status_code == 201
        # The commit shortened the claim's lease to the moment it takes to store the answer.
        [stored] = await store.db[idempotency.COLLECTION].find().to_list()
        assert stored["lease_until"].replace(tzinfo=UTC) <= datetime.now(UTC) + idempotency.ANSWER_LEASE
        assert stored["lease_until"].replace(tzinfo=UTC) >= committed_at + idempotency.ANSWER_LEASE
        await store.db[idempotency.COLLECTION].update_one({}, {"$set": {"state": "committed"},
                                                               "$unset": {"answer": ""}})
        retry = await http.post("/internal/things", json={"b": 1}, headers=headers)
        assert (retry.status_code, retry.json()["code"]) == (409, "idempotency.in_progress")
        assert retry.headers["retry-after"] == str(idempotency.RETRY_AFTER_S)
        # Its lease lapsed: its process may still be storing the answer (a database outage right after the commit).
        await store.db[idempotency.COLLECTION].update_one({}, {"$set": {
            "lease_until": datetime.now(UTC) - timedelta(seconds=1)}})
        for _ in range(2):
            waiting = await http.post("/internal/things", json={"b": 1}, headers=headers)
            assert (waiting.status_code, waiting.json()["code"]) == (409, "idempotency.in_progress")
        # A grace after the first retry found it so (with the database up), waiting will not bring the answer:
        # the client is told so, seconds after the lease and not minutes.
        [orphan] = await store.db[idempotency.COLLECTION].find().to_list()
        await store.db[idempotency.COLLECTION].update_one({}, {"$set": {
            "orphan_since": orphan["orphan_since"] - idempotency.ORPHAN_GRACE - timedelta(seconds=1)}})
        lost = await http.post("/internal/things", json={"b": 1}, headers=headers)
        assert (lost.status_code, lost.json()["code"]) == (409, "idempotency.answer_lost")
    assert runs == ["things"]


async def test_a_retry_while_the_first_runs_waits_and_a_lapsed_claim_is_taken_over(settings: Settings,
                                                                                 store_factory: Any) -> None:
    store: Store = await store_factory("idem")
    release, started = asyncio.Event(), asyncio.Event()
    http, runs = service(settings, store, release, started)
    headers = caller("dave") | {idempotency.HEADER: "k-slow"}
    async with http:
        first = asyncio.create_task(http.post("/internal/slow", json={}, headers=headers))
        await asyncio.wait_for(started.wait(), 10)
        busy = await http.post("/internal/slow", json={}, headers=headers)
        assert (busy.status_code, busy.json()["code"]) == (409, "idempotency.in_progress")
        assert busy.headers["retry-after"] == str(idempotency.RETRY_AFTER_S)
        release.set()
        answered = await first
        assert answered.status_code == 201
        replayed = await http.post("/internal/slow", json={}, headers=headers)
        assert (replayed.json(), replayed.headers[idempotency.REPLAYED_HEADER]) == (answered.json(), "true")
        assert runs == ["slow"]

        # A first attempt whose process died before committing holds its key only for its lease.
        lapsed = caller("dave") | {idempotency.HEADER: "k-lapsed"}
        id_ = idempotency.claim_id("account:dave", "POST", "/internal/slow", "k-lapsed")
        now = datetime.now(UTC)
        await store.db[idempotency.COLLECTION].insert_one({
            "_id": id_, "fingerprint": hashlib.sha256(b"{}").hexdigest(), "state": "running",
            "lease_until": now - timedelta(seconds=1), "expires_at": now + idempotency.WINDOW})
        taken = await http.post("/internal/slow", content=b"{}", headers=lapsed | {"content-type": "application/json"})
        assert taken.status_code == 201 and idempotency.REPLAYED_HEADER.lower() not in taken.headers
        assert runs == ["slow", "slow"]


async def test_an_answer_the_database_could_not_keep_after_the_commit_is_kept_once_it_is_back(
        settings: Settings, store_factory: Any) -> None:
    """The database goes away between the handler's commit and storing its answer (a drill's outage did exactly
    that): a retry after the outage gets the first answer, not ``answer_lost``, and the work does not run again."""
    store: Store = await store_factory("idem")
    await store.ensure_outbox_indexes()
    proxy = Proxy(settings.ports.mongo)
    proxy.on()
    via_proxy: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true", serverSelectionTimeoutMS=500)
    runs: list[str] = []

    @post("/internal/outage", status_code=201)
    async def outage() -> dict[str, Any]:
        async def work(tx: Tx) -> int:
            await store.db["things"].insert_one({"n": 1}, session=tx.session)
            return 1

        runs.append("outage")
        await store.transaction(work)  # committed (and the claim marked), then the database goes away
        await asyncio.to_thread(proxy.off)
        return {"runId": uuid.uuid4().hex}

    async def ready() -> None:
        await store.ping()

    app = service_app(settings, ServiceApi("idem", [outage], ready=ready, database=lambda: via_proxy[store.db.name]))
    key = {idempotency.HEADER: "through-an-outage", INTERNAL_TOKEN_HEADER: settings.security.internal_token}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://idem") as http:
            first = await http.post("/internal/outage", headers=caller("alice") | key)
            assert first.status_code == 201, first.text
            await asyncio.sleep(2)
            await asyncio.to_thread(proxy.on)  # the same port: the database is back
            for _ in range(60):
                again = await http.post("/internal/outage", headers=caller("alice") | key)
                if again.status_code != 409 or again.json()["code"] != "idempotency.in_progress":
                    break
                await asyncio.sleep(0.5)
            assert (again.status_code, again.json()) == (201, first.json()), again.text
            assert again.headers[idempotency.REPLAYED_HEADER] == "true"
            assert runs == ["outage"]
    finally:
        await via_proxy.close()
        proxy.stop()
