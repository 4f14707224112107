"""``Idempotency-Key`` through the gateway and the services: a retry of a create that already committed is answered
from the stored answer (one link, one mail, one rate-limit hit), never run twice."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from kagi_shared import codes
from kagi_shared.mongo import database_name, make_client
from kagi_shared.settings import Settings
from tests.e2e.conftest import create_user, wait_for_mail

REQUESTS = "/api/v1/invitations/requests"


def address() -> str:
    return f"invitee-{uuid.uuid4().hex[:10]}@example.jp"


async def stored(settings: Settings, email: str) -> tuple[int, int, int]:
    """Confirmation links, request rate-limit hits and invitation-requested outbox rows for ``email``."""
    client: Any = make_client(settings)
    try:
        db = client[database_name(settings, "invite")]
        links = await db["confirmation_links"].find({"email": email}).to_list()
        bucket = "request:email:" + codes.hash_code(email.lower(), settings.security.code_pepper)
        hits = await db["rate_hits"].count_documents({"bucket": bucket})
        ids = [link["_id"] for link in links]
        events = await db["outbox"].count_documents({"key": {"$in": ids}}) if ids else 0
        return len(links), hits, events
    finally:
        await client.close()


async def test_a_retry_with_the_same_key_is_answered_from_the_first_attempt(settings: Settings,
                                                                           gateway: httpx.AsyncClient) -> None:
    email = address()
    key = {"Idempotency-Key": f"drill-{uuid.uuid4()}"}
    first = await gateway.post(REQUESTS, json={"email": email}, headers=key)
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(3):  # the client's retries after a 504 it never saw the answer of
        again = await gateway.post(REQUESTS, json={"email": email}, headers=key)
        assert again.status_code == 202, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
    await wait_for_mail(settings, email)
    await asyncio.sleep(2)  # a second mail, had one been requested, would be out by now
    assert len(await wait_for_mail(settings, email)) == 1
    links, hits, events = await stored(settings, email)
    assert (links, hits) == (1, 1)
    assert events <= 1  # the relay may already have published (and removed) the one row

    reused = await gateway.post(REQUESTS, json={"email": address()}, headers=key)
    assert reused.status_code == 422, reused.text
    assert reused.headers["content-type"].startswith("application/problem+json")
    assert reused.json()["code"] == "idempotency.key_reused"


async def test_without_a_key_every_attempt_runs_as_before(settings: Settings, gateway: httpx.AsyncClient) -> None:
    email = address()
    for _ in range(2):
        answer = await gateway.post(REQUESTS, json={"email": email})
        assert answer.status_code == 202, answer.text
        assert "idempotent-replayed" not in answer.headers
    assert (await stored(settings, email))[:2] == (2, 2)


async def test_a_malformed_key_is_refused_before_anything_runs(settings: Settings,
                                                              gateway: httpx.AsyncClient) -> None:
    email = address()
    for bad in ("", "x" * 256, "キー", "two words"):
        refused = await gateway.post(REQUESTS, json={"email": email}, headers={"Idempotency-Key": bad.encode()})
        assert refused.status_code == 400, (bad, refused.text)
        body = refused.json()
        assert body["code"] == "idempotency.key_invalid"
        assert body["errors"][0]["field"] == "Idempotency-Key"
    assert (await stored(settings, email))[:2] == (0, 0)


async def test_concurrent_duplicates_run_the_work_once(settings: Settings, gateway: httpx.AsyncClient) -> None:
    email = address()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    answers = await asyncio.gather(*(gateway.post(REQUESTS, json={"email": email}, headers=key) for _ in range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(202) >= 1 and set(statuses) <= {202, 409}, [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.json()["code"] == "idempotency.in_progress"
        assert int(refused.headers["retry-after"]) >= 1
    fresh = [a for a in answers if a.status_code == 202 and "idempotent-replayed" not in a.headers]
    assert len(fresh) == 1
    assert (await stored(settings, email))[:2] == (1, 1)


async def test_one_callers_key_does_not_replay_for_another(settings: Settings, gateway: httpx.AsyncClient) -> None:
    """The same key from two owners issues a key for each: an answer belongs to the caller that got it."""
    key = {"Idempotency-Key": str(uuid.uuid4())}
    answers = []
    for _ in range(2):
        owner = await create_user(settings, gateway, ["owner"])
        answer = await gateway.post("/api/v1/me/step-up", headers=owner.auth | key)
        assert answer.status_code == 201, answer.text
        assert "idempotent-replayed" not in answer.headers
        again = await gateway.post("/api/v1/me/step-up", headers=owner.auth | key)
        assert (again.status_code, again.headers.get("idempotent-replayed")) == (201, "true")
        answers.append(answer)
        assert len(await wait_for_mail(settings, owner.login_id)) == 1
