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
    for _ in range(100):
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

    verdict = await gateway.get("/api/v1/operator/audit/verify", headers=operator.auth)
    assert verdict.json()["ok"] is True and verdict.json()["entries"] >= 2


async def test_only_operators_read_the_ledger(settings: Settings, gateway: httpx.AsyncClient) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    assert (await gateway.get("/api/v1/operator/audit", headers=owner.auth)).status_code == 403
    assert (await gateway.get("/api/v1/operator/audit/verify")).status_code == 401
