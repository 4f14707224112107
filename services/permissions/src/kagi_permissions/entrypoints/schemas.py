"""Bodies of the internal API: camelCase, strict. The gateway mirrors them for the public API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from kagi_permissions.domain import requests as rules
from kagi_permissions.domain.catalogue import ALL_SYSTEMS, label
from kagi_permissions.domain.companies import Admin, Company
from kagi_permissions.domain.review import DECISION_LABELS, Campaign, ReviewEntry
from kagi_permissions.domain.timing import Schedule

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Code = Annotated[str, msgspec.Meta(max_length=16)]
Ip = Annotated[str, msgspec.Meta(max_length=64)]


class Dto(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class ScheduleOut(Dto):
    submitted_on: date
    accepted_on: date
    batch_date: date
    effective: dict[str, date]

    @classmethod
    def of(cls, s: Schedule) -> ScheduleOut:
        return cls(submitted_on=s.submitted_on, accepted_on=s.accepted_on, batch_date=s.batch_date,
                   effective=dict(s.effective))


class AdminIn(Dto):
    name: Text
    email: Email


class CompanyIn(Dto):
    name: Text
    roles: Annotated[list[str], msgspec.Meta(max_length=3)]
    primary_admin: AdminIn
    secondary_admin: AdminIn | None = None
    contractors: Annotated[list[Text], msgspec.Meta(max_length=100)] = []
    ip_allowlist: Annotated[list[Ip], msgspec.Meta(max_length=50)] = []
    juju_max_users: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None


class CompanyChangeIn(Dto):
    name: Text | None = None
    roles: Annotated[list[str], msgspec.Meta(max_length=3)] | None = None
    primary_admin: AdminIn | None = None
    secondary_admin: AdminIn | None = None
    remove_secondary_admin: bool = False
    contractors: Annotated[list[Text], msgspec.Meta(max_length=100)] | None = None
    ip_allowlist: Annotated[list[Ip], msgspec.Meta(max_length=50)] | None = None
    juju_max_users: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None


class AdminOut(Dto):
    name: str
    email: str


class CompanyOut(Dto):
    company_id: str
    name: str
    roles: list[str]
    contractors: list[str]
    primary_admin: AdminOut
    secondary_admin: AdminOut | None
    ip_allowlist: list[str]
    juju_max_users: int | None
    status: str
    registered_at: datetime
    terminated_at: datetime | None

    @classmethod
    def of(cls, c: Company) -> CompanyOut:
        def admin(a: Admin | None) -> AdminOut | None:
            return AdminOut(name=a.name, email=a.email) if a else None

        primary = admin(c.primary_admin)
        assert primary is not None
        return cls(company_id=c.id, name=c.name, roles=c.roles, contractors=c.contractors, primary_admin=primary,
                   secondary_admin=admin(c.secondary_admin), ip_allowlist=c.ip_allowlist,
                   juju_max_users=c.juju_max_users, status=c.status, registered_at=c.registered_at,
                   terminated_at=c.terminated_at)


class HeldPermissionOut(Dto):
    system: str
    value: str | None
    label: str


class MyPermissionsOut(Dto):
    """The caller's current permission on every target system (PMS: the permission-management right)."""

    user_id: str
    company_id: str | None
    permissions: list[HeldPermissionOut]

    @classmethod
    def of(cls, user_id: str, grant: dict[str, Any] | None) -> MyPermissionsOut:
        grant = grant or {}
        held = {s: v for s, v in grant.get("permissions", {}).items() if v}
        return cls(user_id=grant.get("user_id", user_id), company_id=grant.get("company_id"),
                   permissions=[HeldPermissionOut(system=s, value=held.get(s), label=label(s, held.get(s)))
                                for s in ALL_SYSTEMS])


class TerminationOut(Dto):
    company: CompanyOut
    revoked_users: int


class PermissionsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    taxis: Code | None = msgspec.field(default=None, name="TAXIS")
    johs: Code | None = msgspec.field(default=None, name="JOHS")
    juju: Code | None = msgspec.field(default=None, name="JUJU")
    loacus: Code | None = msgspec.field(default=None, name="LOACUS")
    infosite: Code | None = msgspec.field(default=None, name="INFOSITE")
    pms: Code | None = msgspec.field(default=None, name="PMS")

    def as_dict(self) -> dict[str, str | None]:
        return {k.upper(): v for k, v in msgspec.structs.asdict(self).items()}


class RequestIn(Dto):
    kind: Literal["new", "change", "revoke"]
    user_id: Email
    permissions: PermissionsIn = PermissionsIn()
    name_kanji: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    name_kana: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    contractor: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    memo: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class CancelIn(Dto):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class BatchIn(Dto):
    batch_date: date


class BatchOut(Dto):
    batch_date: date
    requests: int
    commands: int


class SystemOut(Dto):
    system: str
    before: str | None
    after: str | None
    before_label: str
    after_label: str
    timing: str
    state: str
    display: str
    effective_on: date | None
    attempts: int
    reason: str | None
    completed_at: datetime | None
    completed_by: str | None


class RequestOut(Dto):
    request_id: str
    company_id: str
    kind: str
    kind_label: str
    origin: str
    user_id: str
    name_kanji: str
    name_kana: str
    contractor: str | None
    memo: str
    status: str
    status_label: str
    display: dict[str, str]
    submitted_at: datetime
    submitted_on: date
    accepted_on: date | None
    batch_date: date | None
    cancel_reason: str | None
    systems: list[SystemOut]

    @classmethod
    def of(cls, r: rules.PermissionRequest) -> RequestOut:
        shown = rules.display(r)
        return cls(
            request_id=r.id, company_id=r.company_id, kind=r.kind, kind_label=rules.KIND_LABELS[r.kind],
            origin=r.origin, user_id=r.user_id, name_kanji=r.name_kanji, name_kana=r.name_kana,
            contractor=r.contractor, memo=r.memo, status=r.status, status_label=rules.STATUS_LABELS[r.status],
            display=shown, submitted_at=r.submitted_at, submitted_on=r.submitted_on, accepted_on=r.accepted_on,
            batch_date=r.batch_date, cancel_reason=r.cancel_reason,
            systems=[SystemOut(system=s.system, before=s.before, after=s.after, before_label=label(s.system, s.before),
                               after_label=label(s.system, s.after), timing=s.timing, state=s.state,
                               display="済" if s.state == "applied" else "未済", effective_on=s.effective_on,
                               attempts=s.attempts, reason=s.reason, completed_at=s.completed_at,
                               completed_by=s.completed_by) for s in r.systems])


class DraftOut(Dto):
    draft_id: str
    user_id: str
    kind: str
    reason: str
    created_at: datetime


class DeliveryOut(Dto):
    request_id: str
    company_id: str
    user_id: str
    system: str
    state: str
    reason: str | None
    attempts: int
    sent_at: datetime | None


class UserOut(Dto):
    user_id: str
    name_kanji: str
    name_kana: str
    contractor: str | None
    permissions: dict[str, str | None]
    permission_labels: dict[str, str]
    last_login_at: datetime | None
    decision: str
    decision_label: str
    decided_at: datetime | None
    request_id: str | None

    @classmethod
    def of(cls, e: ReviewEntry) -> UserOut:
        return cls(user_id=e.user_id, name_kanji=e.name_kanji, name_kana=e.name_kana, contractor=e.contractor,
                   permissions=e.permissions, permission_labels={s: label(s, v) for s, v in e.permissions.items()},
                   last_login_at=e.last_login_at, decision=e.decision, decision_label=DECISION_LABELS[e.decision],
                   decided_at=e.decided_at, request_id=e.request_id)


class CampaignOut(Dto):
    review_id: str
    started_at: datetime
    started_by: str
    status: str
    users: list[UserOut]

    @classmethod
    def of(cls, c: Campaign) -> CampaignOut:
        return cls(review_id=c.id, started_at=c.started_at, started_by=c.started_by, status=c.status,
                   users=[UserOut.of(e) for e in c.entries])


class DecisionIn(Dto):
    user_id: Email
    decision: Literal["keep", "revoke"]


class ReportOut(Dto):
    filename: str
    csv: str
