"""Access review use cases: list the company's users, run a campaign, keep or revoke, download the report."""

from __future__ import annotations

import uuid
from datetime import datetime

from kagi_permissions.domain import requests as rules
from kagi_permissions.domain.catalogue import REQUESTABLE
from kagi_permissions.domain.review import Campaign, Decision, ReviewEntry, decide, entry_of, report_csv
from kagi_permissions.service.requests import RequestInput, RequestsUseCase
from kagi_shared.mongo import Tx
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller


class ReviewService(RequestsUseCase):
    async def users(self, caller: Caller) -> list[ReviewEntry]:
        """Every user of the admin's company with each system's permission and last login."""
        company = await self.requests.company_of(caller)
        return [entry_of(g) for g in await self.repo.company_grants(company.id)
                if any(g.get("permissions", {}).get(s) for s in REQUESTABLE)]

    async def start(self, caller: Caller, now: datetime | None = None) -> Campaign:
        company = await self.requests.company_of(caller)
        entries = await self.users(caller)
        if not entries:
            raise Problem(409, "review.no_users", "棚卸の対象となる利用者がいません。")
        campaign = Campaign(id=str(uuid.uuid4()), company_id=company.id, started_at=now or self.clock(),
                            started_by=caller.email or caller.login_id, entries=entries)

        async def work(tx: Tx) -> None:
            await self.repo.save_campaign(tx, campaign)

        await self.store.transaction(work)
        return campaign

    async def get(self, caller: Caller, campaign_id: str) -> Campaign:
        company = await self.requests.company_of(caller)
        campaign = await self.repo.campaign(campaign_id)
        if campaign is None or campaign.company_id != company.id:
            raise Problem(404, "review.not_found", "指定された棚卸が見つかりません。")
        return campaign

    async def list(self, caller: Caller) -> list[Campaign]:
        return await self.repo.campaigns((await self.requests.company_of(caller)).id)

    async def decide(self, caller: Caller, campaign_id: str, user_id: str, decision: Decision,
                     now: datetime | None = None) -> Campaign:
        """Keep, or revoke: a revoke becomes a revoke request filed in the same transaction."""
        now = now or self.clock()
        company = await self.requests.company_of(caller)
        campaign = await self.get(caller, campaign_id)
        who = caller.email or caller.login_id
        request = None
        if decision == "revoke":
            request = await self.requests.validate(company, RequestInput(
                kind="revoke", user_id=user_id, memo="棚卸による抹消"), who, now, origin="review")

        async def work(tx: Tx) -> Campaign:
            current = await self.repo.campaign(campaign_id, tx)
            assert current is not None
            entry = decide(current, rules.user_key(user_id), decision, who, now)
            if request is not None:
                await self.requests.file(request, tx=tx)
                entry.request_id = request.id
            await self.repo.save_campaign(tx, current)
            return current

        if campaign.entry(rules.user_key(user_id)) is None:
            raise Problem(404, "review.user_not_found", "この棚卸の対象ではない利用者です。")
        return await self.store.transaction(work)

    async def report(self, caller: Caller, campaign_id: str) -> str:
        return report_csv(await self.get(caller, campaign_id))
