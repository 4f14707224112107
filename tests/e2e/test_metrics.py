"""State gauges an SRE watches: accounts per status and ladder stage, permission requests per state.

They come from each service's own database when Prometheus scrapes the API's ``/metrics`` on its metrics port
(every replica reports the same figures; dashboards take ``max``)."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kagi_shared.metrics import api_metrics_port
from kagi_shared.settings import Settings
from tests.e2e.conftest import create_user


async def gauge(settings: Settings, service: str, name: str, **labels: str) -> float:
    port = api_metrics_port(settings, service)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
        reply = await client.get("/metrics")
    assert reply.status_code == 200, reply.text
    for family in text_string_to_metric_families(reply.text):
        if family.name == name:
            return sum(s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items()))
    return 0.0


async def test_account_gauges_follow_a_lockout(settings: Settings, gateway: httpx.AsyncClient) -> None:
    locked_before = await gauge(settings, "lifecycle", "kagi_lifecycle_accounts", status="locked")
    user = await create_user(settings, gateway, ["owner"])
    active = await gauge(settings, "lifecycle", "kagi_lifecycle_accounts", status="active", ladder_stage="none")
    assert active >= 1

    for _ in range(settings.security.login_lockout_threshold):
        wrong = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": "wrong-Pass-1!"})
        assert wrong.status_code in (401, 423), wrong.text

    assert await gauge(settings, "lifecycle", "kagi_lifecycle_accounts", status="locked") == locked_before + 1
    assert await gauge(settings, "lifecycle", "kagi_lifecycle_accounts",
                       status="active", ladder_stage="none") == active - 1


async def test_request_gauges_follow_filing_and_acceptance(settings: Settings, gateway: httpx.AsyncClient) -> None:
    operator = await create_user(settings, gateway, ["operator"])
    admin = await create_user(settings, gateway, ["company_admin"])
    company = await gateway.post("/api/v1/operator/companies", headers=operator.auth, json={
        "name": "計測ガス株式会社", "roles": ["gas_retailer"],
        "primaryAdmin": {"name": "計測 太郎", "email": admin.login_id}, "contractors": []})
    assert company.status_code == 201, company.text

    async def count(status: str) -> float:
        return await gauge(settings, "permissions", "kagi_permissions_requests", kind="new", status=status)

    submitted, accepted = await count("submitted"), await count("accepted")
    filed = await gateway.post("/api/v1/permission-requests", headers=admin.auth, json={
        "kind": "new", "userId": f"Metrics_{uuid.uuid4().hex[:8]}@example.jp", "nameKanji": "計測 花子",
        "nameKana": "ケイソク ハナコ", "permissions": {"TAXIS": "1011"}})
    assert filed.status_code == 201, filed.text
    assert await count("submitted") == submitted + 1
    # TAXIS plus the info-sharing site granted with it, both waiting for the batch.
    assert await gauge(settings, "permissions", "kagi_permissions_system_states", system="TAXIS") >= 1

    request_id = filed.json()["requestId"]
    taken = await gateway.post(f"/api/v1/operator/permission-requests/{request_id}/accept", headers=operator.auth)
    assert taken.status_code == 200, taken.text
    assert (await count("submitted"), await count("accepted")) == (submitted, accepted + 1)
