"""The internal HTTP API: roles, problem+json with fields, the allowlist the gateway reads."""

from __future__ import annotations

from typing import Any

import httpx
from permissions_helpers import service

from kagi_permissions.entrypoints.api import create_app
from kagi_shared.service_api import Caller, caller_headers
from kagi_shared.settings import Settings

OPERATOR = Caller(account_id="op-1", login_id="operator@kagi.example.jp", roles=("operator",))


def headers(settings: Settings, caller: Caller | None = None) -> dict[str, str]:
    return {"x-internal-token": settings.security.internal_token, **(caller_headers(caller) if caller else {})}


async def test_companies_roles_schedule_and_allowlist_over_http(settings: Settings, store_factory: Any) -> None:
    permissions = await service(settings, await store_factory("permissions"))
    # In-process ASGI on this event loop (the database client is bound to it); the service is already started.
    transport = httpx.ASGITransport(app=create_app(settings, permissions))
    async with httpx.AsyncClient(transport=transport, base_url="http://permissions") as client:
        bad = await client.get("/internal/schedule", params={"submitted_on": "2019-02-30"}, headers=headers(settings))
        assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
        assert bad.json()["errors"][0]["field"] == "submittedOn"
        ok = await client.get("/internal/schedule", params={"submitted_on": "2026-12-28"}, headers=headers(settings))
        assert ok.json()["batchDate"] == "2027-01-04"
        assert (await client.get("/internal/schedule", params={"submitted_on": "2026-12-28"})).status_code == 401

        body = {"name": "海外拠点ガス", "roles": ["manufacturer"],
                "primaryAdmin": {"name": "正 担当", "email": "primary.admin@overseas-gas.example.jp"},
                "secondaryAdmin": {"name": "副 担当", "email": "second.admin@overseas-gas.example.jp"},
                "ipAllowlist": ["1.1.1.1"]}
        admin = Caller(account_id="adm", login_id="primary.admin@overseas-gas.example.jp", roles=("company_admin",))
        refused = await client.post("/internal/companies", json=body, headers=headers(settings, admin))
        assert refused.status_code == 403 and refused.json()["code"] == "auth.forbidden"
        invalid = await client.post("/internal/companies", headers=headers(settings, OPERATOR),
                                    json={**body, "ipAllowlist": ["10.0.0.0/8"]})
        assert invalid.status_code == 400 and invalid.json()["errors"][0]["field"] == "ipAllowlist[0]"
        unknown = await client.post("/internal/companies", headers=headers(settings, OPERATOR),
                                    json={**body, "colour": "blue"})
        assert unknown.status_code == 400
        created = await client.post("/internal/companies", json=body, headers=headers(settings, OPERATOR))
        assert created.status_code == 201, created.text
        assert created.json()["secondaryAdmin"]["email"] == "second.admin@overseas-gas.example.jp"

        allow = await client.get("/internal/ip-allowlist", headers=headers(settings))
        assert allow.json() == {"addresses": ["1.1.1.1"]}

        secondary = Caller(account_id="adm2", login_id="Second.Admin@overseas-gas.example.jp",
                           roles=("company_admin",))
        mine = await client.get("/internal/my-company", headers=headers(settings, secondary))
        assert mine.status_code == 200 and mine.json()["name"] == "海外拠点ガス"
        filed = await client.post("/internal/requests", headers=headers(settings, secondary), json={
            "kind": "new", "userId": "plant.operator@overseas-gas.example.jp", "nameKanji": "製造 次郎",
            "nameKana": "セイゾウ ジロウ", "permissions": {"LOACUS": "03010", "JUJU": None}})
        assert filed.status_code == 201, filed.text
        assert filed.json()["display"] == {"progress": "申請済", "TAXIS": "(不要)", "JOHS": "(不要)",
                                           "JUJU": "(不要)", "LOACUS": "未済", "INFOSITE": "未済"}
        wrong_role = await client.post("/internal/requests", headers=headers(settings, secondary), json={
            "kind": "new", "userId": "reader@overseas-gas.example.jp", "nameKanji": "読取", "nameKana": "ヨミトリ",
            "permissions": {"LOACUS": "02011"}})
        assert wrong_role.status_code == 400
        assert wrong_role.json()["errors"][0]["field"] == "permissions.LOACUS"

        terminated = await client.post(f"/internal/companies/{created.json()['companyId']}/termination",
                                       headers=headers(settings, OPERATOR))
        assert terminated.status_code == 200 and terminated.json()["company"]["status"] == "terminated"
        assert (await client.get("/internal/ip-allowlist", headers=headers(settings))).json() == {"addresses": []}


async def test_an_admins_catalogue_counts_the_juju_places_taken_by_holders_and_open_requests(
        settings: Settings, store_factory: Any) -> None:
    permissions = await service(settings, await store_factory("permissions"))
    transport = httpx.ASGITransport(app=create_app(settings, permissions))
    async with httpx.AsyncClient(transport=transport, base_url="http://permissions") as client:
        created = await client.post("/internal/companies", headers=headers(settings, OPERATOR), json={
            "name": "上限ガス", "roles": ["gas_retailer"], "jujuMaxUsers": 2,
            "primaryAdmin": {"name": "上限 担当", "email": "admin@juju-limit.example.jp"}})
        assert created.status_code == 201, created.text
        admin = Caller(account_id="adm-juju", login_id="admin@juju-limit.example.jp", roles=("company_admin",))

        async def usage() -> Any:
            return (await client.get("/internal/catalogue", headers=headers(settings, admin))).json()["jujuUsage"]

        assert await usage() == {"limit": 2, "used": 0, "remaining": 2}
        for n in (1, 2):
            filed = await client.post("/internal/requests", headers=headers(settings, admin), json={
                "kind": "new", "userId": f"juju{n}@juju-limit.example.jp", "nameKanji": "上限 太郎",
                "nameKana": "ジョウゲン タロウ", "permissions": {"JUJU": "yes"}})
            assert filed.status_code == 201, filed.text
            assert await usage() == {"limit": 2, "used": n, "remaining": 2 - n}  # a request not yet accepted counts
        third = await client.post("/internal/requests", headers=headers(settings, admin), json={
            "kind": "new", "userId": "juju3@juju-limit.example.jp", "nameKanji": "上限 三郎",
            "nameKana": "ジョウゲン サブロウ", "permissions": {"JUJU": "yes"}})
        assert third.status_code == 400 and "2名まで" in third.json()["errors"][0]["reason"]

        # The operator, and an admin of no company, get the plain catalogue.
        plain = (await client.get("/internal/catalogue", headers=headers(settings, OPERATOR))).json()
        assert "jujuUsage" not in plain and plain["systems"]
        stranger = Caller(account_id="adm-x", login_id="nobody@elsewhere.example.jp", roles=("company_admin",))
        assert "jujuUsage" not in (await client.get("/internal/catalogue", headers=headers(settings, stranger))).json()
