"""Company use cases (operator): register, change, terminate; admins get the permission-management right."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from kagi_permissions.domain import requests as rules
from kagi_permissions.domain.catalogue import ALL_SYSTEMS, YES
from kagi_permissions.domain.companies import Admin, Company, IdTaken, company_errors
from kagi_permissions.domain.requests import PermissionRequest, SystemStatus
from kagi_permissions.domain.timing import revoke_effective
from kagi_permissions.service.requests import RequestsUseCase, jst_today
from kagi_shared.events import permissions as ev
from kagi_shared.mongo import Tx
from kagi_shared.problems import FieldError, Problem

_UNSET = object()
T = TypeVar("T")


@dataclass
class CompanyInput:
    name: str
    roles: list[str]
    primary_admin: Admin
    secondary_admin: Admin | None = None
    contractors: list[str] = field(default_factory=list)
    ip_allowlist: list[str] = field(default_factory=list)
    juju_max_users: int | None = None


class CompanyService(RequestsUseCase):
    def _check(self, company: Company) -> None:
        errors = company_errors(company.roles, company.contractors,
                                [("primaryAdmin", company.primary_admin), ("secondaryAdmin", company.secondary_admin)],
                                company.ip_allowlist)
        if errors:
            raise Problem(400, "company.invalid", "事業者の登録内容に誤りがあります。", errors=errors)

    async def _appoint(self, tx: Tx, company: Company, admin: Admin, field_name: str, now: datetime) -> None:
        """Issue the admin's ID and route the permission-management right to PMS."""
        key = rules.user_key(admin.email)
        existing = await self.repo.grant(key, tx)
        if existing is not None and existing.get("company_id") != company.id:
            raise Problem(400, "company.invalid", "事業者の登録内容に誤りがあります。", errors=[FieldError(
                f"{field_name}.email", "他の事業者の利用者として登録されているIDです。")])
        if existing is None:
            holder = await self.repo.id_holder(key, tx)
            if holder is not None and holder != company.id:
                raise Problem(400, "company.invalid", "事業者の登録内容に誤りがあります。", errors=[FieldError(
                    f"{field_name}.email", "既に登録されているIDです(英字の大文字と小文字は同一と見做されます)。")])
            if holder is None:
                await self.repo.reserve_id(tx, key, company.id, "company")
        before = (existing or {}).get("permissions", {}).get("PMS")
        if before == YES:
            return
        await self._route(tx, company, admin.email, admin.name, [SystemStatus(
            system="PMS", before=None, after=YES, timing="immediate", effective_on=jst_today(now))], "new", now)

    async def _route(self, tx: Tx, company: Company, user_id: str, name: str, systems: list[SystemStatus],
                     kind: rules.Kind, now: datetime, origin: rules.Origin = "company") -> PermissionRequest:
        request = PermissionRequest(
            id=str(uuid.uuid4()), company_id=company.id, kind=kind, user_id=user_id, user_key=rules.user_key(user_id),
            name_kanji=name, name_kana="", filed_by="operator", origin=origin,
            status="in_progress", submitted_at=now, submitted_on=jst_today(now), systems=systems)
        for status in systems:
            if status.timing == "immediate":
                self.requests.send(tx, request, status, now)
        await self.repo.insert_request(tx, request)
        return request

    async def register(self, data: CompanyInput, now: datetime | None = None) -> Company:
        now = now or self.clock()
        company = Company(id=str(uuid.uuid4()), name=data.name, roles=list(dict.fromkeys(data.roles)),
                          contractors=data.contractors, primary_admin=data.primary_admin,
                          secondary_admin=data.secondary_admin, ip_allowlist=data.ip_allowlist,
                          juju_max_users=data.juju_max_users, registered_at=now)
        self._check(company)

        async def work(tx: Tx) -> Company:
            await self.repo.insert_company(tx, company)
            await self.repo.set_admins(tx, company.id, [a.email for a in company.admins()])
            await self._appoint(tx, company, company.primary_admin, "primaryAdmin", now)
            if company.secondary_admin:
                await self._appoint(tx, company, company.secondary_admin, "secondaryAdmin", now)
            self.requests.publish(tx, ev.CompanyRegistered(company_id=company.id, name=company.name,
                                                           roles=company.roles), company.id)
            return company

        return await self._tx(work)

    async def _tx(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        try:
            return await self.store.transaction(work)
        except IdTaken:
            raise Problem(409, "company.admin_taken", "システム窓口責任者のIDは既に他で使用されています。") from None

    async def get(self, company_id: str) -> Company:
        company = await self.repo.company(company_id)
        if company is None:
            raise Problem(404, "company.not_found", "指定された事業者が見つかりません。")
        return company

    async def change(self, company_id: str, changes: dict[str, object], now: datetime | None = None) -> Company:
        """Change name, roles, contractors, admins, allowlist or the JUJU override; no user grant changes."""
        now = now or self.clock()

        async def work(tx: Tx) -> Company:
            company = await self.repo.company(company_id, tx)
            if company is None:
                raise Problem(404, "company.not_found", "指定された事業者が見つかりません。")
            if company.status != "active":
                raise Problem(409, "company.terminated", "利用を終了した事業者は変更できません。")
            old_admins = {a.email.lower(): a for a in company.admins()}
            for name, value in changes.items():
                setattr(company, name, value)
            self._check(company)
            await self.repo.save_company(tx, company)
            new_admins = {a.email.lower(): a for a in company.admins()}
            await self.repo.set_admins(tx, company.id, [a.email for a in company.admins()])
            for key, admin in new_admins.items():
                if key not in old_admins:
                    label = "primaryAdmin" if admin is company.primary_admin else "secondaryAdmin"
                    await self._appoint(tx, company, admin, label, now)
            for key, admin in old_admins.items():
                if key not in new_admins:
                    await self._retire_admin(tx, company, admin, now)
            self.requests.publish(tx, ev.CompanyChanged(company_id=company.id, changed=sorted(changes)), company.id)
            return company

        return await self._tx(work)

    async def _retire_admin(self, tx: Tx, company: Company, admin: Admin, now: datetime) -> None:
        grant = await self.repo.grant(rules.user_key(admin.email), tx)
        if grant and grant.get("permissions", {}).get("PMS"):
            await self._route(tx, company, admin.email, admin.name, [SystemStatus(
                system="PMS", before=YES, after=None, timing="immediate",
                effective_on=revoke_effective(jst_today(now), "PMS"))], "revoke", now)
        elif not grant:
            await self.repo.release_id(tx, rules.user_key(admin.email))

    async def terminate(self, company_id: str, now: datetime | None = None) -> tuple[Company, int]:
        """Company termination (利用終了): every grant of its users is revoked; open requests are cancelled."""
        now = now or self.clock()

        async def work(tx: Tx) -> tuple[Company, int]:
            company = await self.repo.company(company_id, tx)
            if company is None:
                raise Problem(404, "company.not_found", "指定された事業者が見つかりません。")
            if company.status != "active":
                raise Problem(409, "company.terminated", "この事業者は既に利用を終了しています。")
            company.status = "terminated"
            company.terminated_at = now
            await self.repo.save_company(tx, company)
            await self.repo.set_admins(tx, company.id, [])
            for request in await self.repo.cancel_open_requests(tx, company.id, "事業者の利用終了"):
                if request.kind == "new":
                    await self.repo.release_id(tx, request.user_key)
                await self.repo.unlock_user(tx, request.user_key, request.id)
            revoked = 0
            for grant in await self.repo.company_grants(company.id, tx):
                held = {s: v for s, v in grant.get("permissions", {}).items() if v and s in ALL_SYSTEMS}
                if not held:
                    continue
                systems = [SystemStatus(system=s, before=v, after=None,
                                        timing="manual" if s in ("JUJU", "LOACUS") else "immediate",
                                        effective_on=revoke_effective(jst_today(now), s)) for s, v in held.items()]
                await self._route(tx, company, grant["user_id"], grant.get("name_kanji", ""), systems, "revoke", now,
                                  origin="termination")
                # The ID may no longer log in from now on, whatever the target systems' revokes still take.
                self.requests.access_changed(tx, grant["user_id"], company.id, "*", None, None, {},
                                             reason="company_terminated")
                revoked += 1
            self.requests.publish(tx, ev.CompanyTerminated(company_id=company.id, revoked_users=revoked), company.id)
            return company, revoked

        result: tuple[Company, int] = await self._tx(work)
        return result
