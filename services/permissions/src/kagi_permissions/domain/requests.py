"""Permission requests (設定/変更/抹消, seed 5-1 to 5-3): the input rules and the state machine.

Pure: the caller passes the company, the user's current grants and counts it looked up, and
gets either a plan (which systems change, when) or field-level reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import msgspec

from kagi_permissions.domain.catalogue import REQUESTABLE, SYSTEMS, YES
from kagi_permissions.domain.timing import FAST_SYSTEMS, revoke_effective
from kagi_shared.problems import FieldError, Problem

Kind = Literal["new", "change", "revoke"]
Status = Literal["submitted", "accepted", "cancelled", "in_progress", "complete"]
Timing = Literal["immediate", "batch", "manual"]
SystemState = Literal["waiting", "sent", "applied", "failed"]
Origin = Literal["admin", "company", "termination", "review", "purge"]
OPEN: tuple[str, ...] = ("submitted", "accepted", "in_progress")

KIND_LABELS = {"new": "設定", "change": "変更", "revoke": "抹消"}
STATUS_LABELS = {"submitted": "申請済", "accepted": "受付完了", "cancelled": "申請取消", "in_progress": "処理中",
                 "complete": "処理完了"}

# 認証システムの制約 (seed 5-1 【注3】): local part ASCII letters, digits and - _ ~ . $ & ' ` ^ =
_LOCAL = re.compile(r"^[A-Za-z0-9\-_~.$&'`^=]+$")
_DOMAIN = re.compile(r"^[A-Za-z0-9\-.]+$")
MAX_ID_LENGTH = 254


class SystemStatus(msgspec.Struct, kw_only=True):
    system: str
    before: str | None
    after: str | None
    timing: Timing
    state: SystemState = "waiting"
    effective_on: date | None = None
    command_id: str | None = None
    attempts: int = 0
    sent_at: datetime | None = None
    reminded: bool = False
    reason: str | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None


class PermissionRequest(msgspec.Struct, kw_only=True):
    id: str
    company_id: str
    kind: Kind
    user_id: str
    user_key: str
    name_kanji: str
    name_kana: str
    contractor: str | None = None
    memo: str = ""
    filed_by: str
    origin: Origin = "admin"
    status: Status = "submitted"
    submitted_at: datetime
    submitted_on: date
    accepted_on: date | None = None
    batch_date: date | None = None
    cancel_reason: str | None = None
    systems: list[SystemStatus] = []
    registration_mailed: bool = False

    def system(self, key: str) -> SystemStatus | None:
        return next((s for s in self.systems if s.system == key), None)


def user_key(user_id: str) -> str:
    """IDs are the same case-insensitively (seed: Takuso_Taro@… and takuso_taro@… are one ID)."""
    return user_id.strip().lower()


def user_id_reasons(user_id: str) -> list[str]:
    """Why an ID cannot be used, in Japanese; empty if it is fine."""
    if len(user_id) > MAX_ID_LENGTH:
        return [f"IDは{MAX_ID_LENGTH}文字以内で入力してください。"]
    local, at, domain = user_id.partition("@")
    if not at or not local or not domain:
        return ["IDはメールアドレスの形式で入力してください。"]
    reasons = []
    if not _LOCAL.match(local):
        reasons.append("@よりも前に使用できる文字は半角英数字と - _ ~ . $ & ' ` ^ = です。")
    if not _DOMAIN.match(domain) or "." not in domain or domain.startswith((".", "-")) or domain.endswith("."):
        reasons.append("@よりも後に使用できる文字は半角英数字と - . です。")
    return reasons


def normalise_after(after: dict[str, str | None]) -> dict[str, str | None]:
    return {system: (after.get(system) or None) for system in REQUESTABLE}


def permission_errors(after: dict[str, str | None], company_roles: list[str],
                      requested_pms: bool, requested_infosite: bool) -> list[FieldError]:
    """Codes known, on the right system, and allowed for the company's roles."""
    errors = []
    if requested_pms:
        errors.append(FieldError("permissions.PMS",
                                 "権限管理システムの利用権限は申請できません(システム窓口責任者に当社が付与します)。"))
    if requested_infosite:
        errors.append(FieldError("permissions.INFOSITE",
                                 "情報共有サイトの利用権限は、いずれかのシステムの利用権限を持つ利用者に自動で付与されます。"))
    for system in REQUESTABLE:
        value = after.get(system)
        if value is None:
            continue
        target = SYSTEMS[system]
        if value in target.retired:
            _, reason = target.retired[value]
            errors.append(FieldError(f"permissions.{system}", f"{value} は廃止された権限です。{reason}"))
            continue
        code = target.code(value)
        if code is None:
            owner = next((s for s in REQUESTABLE if s != system and SYSTEMS[s].code(value)), None)
            allowed = "、".join(c.code for c in target.codes)
            where = f"({value} は {owner} の権限です)" if owner else ""
            errors.append(FieldError(f"permissions.{system}", f"{system} に指定できる値は {allowed} です{where}。"))
            continue
        if code.requires_role and code.requires_role not in company_roles:
            role = {"consignment_requester": "託送供給依頼者", "manufacturer": "製造事業者"}[code.requires_role]
            errors.append(FieldError(f"permissions.{system}",
                                     f"{value} は「{role}」として登録されている事業者のみ申請できます。"))
    return errors


def with_infosite(perms: dict[str, str | None]) -> dict[str, str | None]:
    """Info-sharing site access follows from holding any of the four systems."""
    out = {s: perms.get(s) for s in REQUESTABLE}
    out["INFOSITE"] = YES if any(out[s] for s in REQUESTABLE) else None
    return out


def plan(kind: Kind, before: dict[str, str | None], after: dict[str, str | None],
         submitted_on: date) -> list[SystemStatus]:
    """Which systems change and how: batch (new, and JUJU/LOACUS changes), immediate or manual."""
    old = with_infosite(before)
    new = with_infosite(after) if kind != "revoke" else with_infosite({})
    out = []
    for system in (*REQUESTABLE, "INFOSITE"):
        if old[system] == new[system]:
            continue
        fast = system in FAST_SYSTEMS or system == "INFOSITE"
        if kind == "new":
            out.append(SystemStatus(system=system, before=None, after=new[system], timing="batch"))
        elif kind == "change":
            out.append(SystemStatus(system=system, before=old[system], after=new[system],
                                    timing="immediate" if fast else "batch",
                                    effective_on=submitted_on if fast else None))
        else:
            out.append(SystemStatus(system=system, before=old[system], after=None,
                                    timing="immediate" if fast else "manual",
                                    effective_on=revoke_effective(submitted_on, system)))
    return out


def initial_status(kind: Kind, systems: list[SystemStatus]) -> Status:
    """New requests wait for the operator's acceptance (seed 5-1 ③). Changes and revokes are taken in by the
    system itself (seed 5-2 ①, 5-3 ①): at once when nothing waits for a batch, else accepted on the
    submission date and waiting for their batch date M."""
    if kind == "new":
        return "submitted"
    if any(s.timing == "batch" for s in systems):
        return "accepted"
    return "in_progress"


def accept_by_system(request: PermissionRequest, batch: date, effective: dict[str, date]) -> None:
    """Seed 5-2: a change with JUJU/LOACUS work is accepted on its submission date and goes in the batch ``batch``
    (whose M follows from that date); ``effective`` gives each batched system's first day of use."""
    request.status = "accepted"
    request.accepted_on = request.submitted_on
    request.batch_date = batch
    for status in request.systems:
        if status.timing == "batch":
            status.effective_on = effective[status.system]


def accept(request: PermissionRequest, accepted_on: date, batch: date) -> None:
    if request.status != "submitted":
        raise Problem(409, "request.not_submitted", f"この申請は{STATUS_LABELS[request.status]}のため受付できません。",
                      extra={"status": request.status})
    request.status = "accepted"
    request.accepted_on = accepted_on
    request.batch_date = batch


def cancel(request: PermissionRequest, reason: str) -> None:
    if request.status not in ("submitted", "accepted"):
        raise Problem(409, "request.not_cancellable",
                      f"この申請は{STATUS_LABELS[request.status]}のため取り消せません。",
                      extra={"status": request.status})
    request.status = "cancelled"
    request.cancel_reason = reason


def settle(request: PermissionRequest) -> bool:
    """After a system completes: the request is complete once every system is. Returns True on completion."""
    if request.status in ("cancelled", "complete"):
        return False
    if request.systems and all(s.state == "applied" for s in request.systems):
        request.status = "complete"
        return True
    return False


def display(request: PermissionRequest) -> dict[str, str]:
    """The seed's status screen: progress and 済/未済/(不要) per system."""
    shown = {"progress": STATUS_LABELS[request.status]}
    for system in (*REQUESTABLE, "INFOSITE"):
        status = request.system(system)
        if status is None:
            shown[system] = "(不要)"
        else:
            shown[system] = "済" if status.state == "applied" else "未済"
    return shown


@dataclass(frozen=True)
class JujuPolicy:
    """SPEC §3: JUJU is limited to ``max_users`` users per company (5); a company's own limit, set by the operator,
    is the override for a 6th and beyond."""

    max_users: int = 5

    def limit_for(self, company_override: int | None) -> int:
        # 0 is an operator's answer (no JUJU for this company), not a missing one.
        return self.max_users if company_override is None else company_override

    def refuses(self, user_key: str, holders: set[str], company_override: int | None) -> bool:
        """Would granting JUJU to ``user_key`` exceed the limit, given who holds or is about to hold it?"""
        return user_key not in holders and len(holders) >= self.limit_for(company_override)


class RevokeDraft(msgspec.Struct, kw_only=True):
    """A prefilled revoke request for an ID lifecycle purged (seed 5-7): the company's admins confirm it."""

    id: str
    company_id: str
    user_id: str
    kind: str = "revoke"
    reason: str = "purged"
    purged_at: datetime
    status: Literal["open", "filed"] = "open"
    created_at: datetime
    request_id: str | None = None
