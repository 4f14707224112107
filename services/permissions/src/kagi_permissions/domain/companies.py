"""Companies (事業者): roles, contractors, admins (システム窓口責任者) and the IP allowlist (seed 2-4, 2-8, 3)."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Literal

import msgspec

from kagi_permissions.domain.catalogue import COMPANY_ROLE_LABELS
from kagi_permissions.domain.requests import user_id_reasons
from kagi_shared.problems import FieldError


class IdTaken(Exception):
    """The user ID (lower-cased) is already issued or reserved, or already another company's admin."""


class UserBusy(Exception):
    """The user already has an open change or revoke request."""


class Admin(msgspec.Struct, kw_only=True):
    name: str
    email: str


class Company(msgspec.Struct, kw_only=True):
    id: str
    name: str
    roles: list[str]
    contractors: list[str] = []
    primary_admin: Admin
    secondary_admin: Admin | None = None
    ip_allowlist: list[str] = []
    juju_max_users: int | None = None
    """An operator override of the JUJU limit for this company; None uses the setting."""
    status: Literal["active", "terminated"] = "active"
    registered_at: datetime
    terminated_at: datetime | None = None

    def admins(self) -> list[Admin]:
        return [a for a in (self.primary_admin, self.secondary_admin) if a is not None]


def company_errors(roles: list[str], contractors: list[str], admins: list[tuple[str, Admin | None]],
                   ip_allowlist: list[str]) -> list[FieldError]:
    errors = []
    if not roles:
        errors.append(FieldError("roles", "事業者の区分を1つ以上指定してください。"))
    for index, role in enumerate(roles):
        if role not in COMPANY_ROLE_LABELS:
            allowed = ", ".join(COMPANY_ROLE_LABELS)
            errors.append(FieldError(f"roles[{index}]", f"事業者の区分は {allowed} のいずれかです。"))
    if len({c.strip() for c in contractors}) != len(contractors):
        errors.append(FieldError("contractors", "委託先事業者が重複しています。"))
    for field, admin in admins:
        if admin is None:
            continue
        for reason in user_id_reasons(admin.email):
            errors.append(FieldError(f"{field}.email", reason))
    emails = [a.email.lower() for _, a in admins if a is not None]
    if len(set(emails)) != len(emails):
        errors.append(FieldError("secondaryAdmin.email", "正担当と副担当に同じIDは指定できません。"))
    for index, ip in enumerate(ip_allowlist):
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            errors.append(FieldError(f"ipAllowlist[{index}]",
                                     "固定のグローバルIPアドレスを1つずつ指定してください(範囲指定は不可)。"))
            continue
        if not address.is_global:
            errors.append(FieldError(f"ipAllowlist[{index}]", "グローバルIPアドレスではありません。"))
    return errors
