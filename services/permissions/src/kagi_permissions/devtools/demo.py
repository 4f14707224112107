"""Demo data a newcomer can use at once (``kagi demo seed``, ``make run``): a company whose primary admin is the
demo admin, and one system user already holding a TAXIS permission (as if its request had completed)."""

from __future__ import annotations

from datetime import UTC, datetime

from kagi_permissions.bootstrap import Permissions
from kagi_permissions.domain import requests as rules
from kagi_permissions.domain.catalogue import YES
from kagi_permissions.domain.companies import Admin
from kagi_permissions.service.companies import CompanyInput
from kagi_shared.mongo import Tx

DEMO_COMPANY = "デモパートナーガス株式会社"
DEMO_CONTRACTOR = "デモ委託先株式会社"


async def seed_company(permissions: Permissions, admin_email: str, user_id: str) -> tuple[str, str]:
    """(company id, "created"/"exists"); the demo user's grant is written once, as a completed request leaves it."""
    existing = next((c for c in await permissions.repo.list_companies()
                     if c.name == DEMO_COMPANY and c.status == "active"), None)
    state = "exists"
    if existing is None:
        existing = await permissions.companies.register(CompanyInput(
            name=DEMO_COMPANY, roles=["gas_retailer", "consignment_requester"],
            primary_admin=Admin(name="託送 太郎", email=admin_email), contractors=[DEMO_CONTRACTOR]))
        state = "created"
    company = existing
    key = rules.user_key(user_id)
    if await permissions.repo.grant(key) is None:
        async def work(tx: Tx) -> None:
            await permissions.repo.reserve_id(tx, key, company.id, "demo")
            await permissions.repo.grants.update_one({"_id": key}, {"$set": {
                "user_id": user_id, "company_id": company.id, "name_kanji": "託送 花子", "name_kana": "タクソウ ハナコ",
                "contractor": None, "permissions": {"TAXIS": "1011", "INFOSITE": YES},
                "granted_at": datetime.now(UTC)}}, upsert=True, session=tx.session)

        await permissions.store.transaction(work)
    return company.id, state
