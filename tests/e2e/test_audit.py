"""Operator actions are audited through the gateway and the chain verifies; owners' actions are not audited."""

from __future__ import annotations

import asyncio

import httpx

from kagi_shared.settings import Settings
from tests.e2e.conftest import create_user


async def test_operator_actions_land_in_the_verified_ledger(settings: Settings, gateway: httpx.AsyncClient) -> None:
    operator = await create_user(settings, gateway, ["operator"])
    looked_up = await gateway.get("/api/v1/operator/deliveries", params={"recipient": "someone@example.jp"},
                                  headers={**operator.auth, "X-Request-ID": "audit-e2e-0001"})
    assert looked_up.status_code == 200
    refused = await gateway.get("/api/v1/operator/deliveries", params={"recipient": "x"}, headers=operator.auth)
    assert refused.status_code == 400

    entries: list[dict[str, object]] = []
    # Up to two minutes: in a full run the audit worker starts with the system just before this module and first
    # works off what the earlier tiers published to audit.events (~500 entries, ~25 s on the embedded database).
    for _ in range(600):
        reply = await gateway.get("/api/v1/operator/audit", headers=operator.auth)
        assert reply.status_code == 200
        entries = [e for e in reply.json() if e["actorLoginId"] == operator.login_id
                   and e["action"] == "GET /api/v1/operator/deliveries"]
        if len(entries) >= 2:
            break
        await asyncio.sleep(0.2)
    by_request = {e["requestId"]: e for e in entries}
    assert by_request["audit-e2e-0001"]["outcome"] == "success"
    assert by_request["audit-e2e-0001"]["status"] == 200
    assert by_request["audit-e2e-0001"]["ip"] == "127.0.0.1"
    assert any(e["outcome"] == "refused" and e["status"] == 400 for e in entries)

    for _ in range(300):  # the newest entries' checkpoint leaves through the audit worker's outbox
        verdict = (await gateway.get("/api/v1/operator/audit/verify", headers=operator.auth)).json()
        if verdict["ok"]:
            break
        await asyncio.sleep(0.2)
    assert verdict["ok"] is True and verdict["entries"] >= 2, verdict


async def test_only_operators_read_the_ledger(settings: Settings, gateway: httpx.AsyncClient) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    assert (await gateway.get("/api/v1/operator/audit", headers=owner.auth)).status_code == 403
    assert (await gateway.get("/api/v1/operator/audit/verify")).status_code == 401


async def _ledger_entries(gateway: httpx.AsyncClient, operator_auth: dict[str, str], match: dict[str, object],
                          count: int = 1) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for _ in range(600):  # as long as the first test's wait: the worker may still be working off a backlog
        reply = await gateway.get("/api/v1/operator/audit", params={"limit": 500}, headers=operator_auth)
        found = [e for e in reply.json() if all(e.get(k) == v for k, v in match.items())]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"no audit entry like {match}: {found}")


async def test_failed_logins_and_refusals_are_audited(settings: Settings, gateway: httpx.AsyncClient) -> None:
    """Issue 15, finding 8 (ASVS V16): a failed login and every 401/403 answer land in the ledger."""
    operator = await create_user(settings, gateway, ["operator"])
    owner = await create_user(settings, gateway, ["owner"])
    tag = owner.login_id.split("@")[0]
    wrong = await gateway.post("/api/v1/auth/login", json={"loginId": owner.login_id, "password": "wrong-Pass-1"},
                               headers={"X-Request-ID": f"audit-login-{tag}"})
    assert wrong.status_code == 401
    forbidden = await gateway.get("/api/v1/operator/audit", headers={**owner.auth,
                                                                       "X-Request-ID": f"audit-403-{tag}"})
    assert forbidden.status_code == 403
    anonymous = await gateway.get("/api/v1/me", headers={"X-Request-ID": f"audit-401-{tag}"})
    assert anonymous.status_code == 401

    [login] = await _ledger_entries(gateway, operator.auth, {"requestId": f"audit-login-{tag}"})
    assert (login["actorId"], login["actorLoginId"], login["status"], login["outcome"]) == (
        "anonymous", owner.login_id, 401, "refused")
    assert login["action"] == "POST /api/v1/auth/login" and login["ip"] == "127.0.0.1"
    [refusal] = await _ledger_entries(gateway, operator.auth, {"requestId": f"audit-403-{tag}"})
    assert refusal["status"] == 403 and refusal["actorLoginId"] == owner.login_id
    [unauthenticated] = await _ledger_entries(gateway, operator.auth, {"requestId": f"audit-401-{tag}"})
    assert unauthenticated["status"] == 401 and unauthenticated["actorId"] == "anonymous"


async def test_a_ledger_whose_tail_was_removed_does_not_verify(settings: Settings, gateway: httpx.AsyncClient) -> None:
    """Issue 15, finding 8: removing the newest entries leaves a chain consistent in itself; the latest signed
    checkpoint on audit.checkpoints (outside the database) still counts them. The audit API is asked directly:
    through the gateway each verification would itself be audited and lengthen the ledger meanwhile."""
    from pymongo import AsyncMongoClient

    from kagi_shared.mongo import database_name
    from kagi_shared.service_api import Caller, caller_headers

    operator = await create_user(settings, gateway, ["operator"])
    request = f"audit-tail-{operator.login_id.split('@')[0]}"
    looked_up = await gateway.get("/api/v1/operator/deliveries", params={"recipient": "tail@example.jp"},
                                  headers={**operator.auth, "X-Request-ID": request})
    assert looked_up.status_code == 200
    await _ledger_entries(gateway, operator.auth, {"requestId": request})
    headers = {"x-internal-token": settings.security.internal_token,
               **caller_headers(Caller(account_id="op", login_id="op@example.jp", roles=("operator",)))}
    async with httpx.AsyncClient(base_url=settings.service_url("audit"), headers=headers, timeout=15) as audit:
        verdict: dict[str, object] = {}
        for _ in range(300):  # the newest checkpoint leaves through the audit worker's outbox
            verdict = (await audit.get("/internal/audit/verify")).json()
            if verdict["ok"] and verdict["checkpointEntries"] == verdict["entries"]:
                break
            await asyncio.sleep(0.2)
        assert verdict["ok"] is True and verdict["checkpointEntries"] == verdict["entries"], verdict

        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_uri)
        ledger = client[database_name(settings, "audit")]["ledger"]
        try:
            newest = await ledger.find_one({}, sort=[("_id", -1)])
            assert newest is not None
            await ledger.delete_one({"_id": newest["_id"]})
            try:
                cut = (await audit.get("/internal/audit/verify")).json()
                assert cut["ok"] is False and cut["brokenAt"] == newest["_id"], cut
                assert "tail was removed" in cut["reason"]
            finally:
                await ledger.insert_one(newest)
            assert (await audit.get("/internal/audit/verify")).json()["ok"] is True
        finally:
            await client.close()
