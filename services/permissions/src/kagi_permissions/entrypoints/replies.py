"""The domain's records as the internal API's replies (the types themselves are ``kagi_shared.contracts``)."""

from __future__ import annotations

from typing import Any

from kagi_permissions.domain import requests as rules
from kagi_permissions.domain.catalogue import ALL_SYSTEMS, label
from kagi_permissions.domain.companies import Admin, Company
from kagi_permissions.domain.review import DECISION_LABELS, Campaign, ReviewEntry
from kagi_permissions.domain.timing import Schedule
from kagi_shared.contracts.permissions import (
    AdminOut,
    CompanyOut,
    HeldPermissionOut,
    MyPermissionsOut,
    RequestOut,
    ReviewOut,
    ReviewUserOut,
    ScheduleOut,
    SystemOut,
)


def schedule_out(s: Schedule) -> ScheduleOut:
    return ScheduleOut(submitted_on=s.submitted_on, accepted_on=s.accepted_on, batch_date=s.batch_date,
                       effective=dict(s.effective))


def company_out(c: Company) -> CompanyOut:
    def admin(a: Admin | None) -> AdminOut | None:
        return AdminOut(name=a.name, email=a.email) if a else None

    primary = admin(c.primary_admin)
    assert primary is not None
    return CompanyOut(company_id=c.id, name=c.name, roles=c.roles, contractors=c.contractors, primary_admin=primary,
                      secondary_admin=admin(c.secondary_admin), ip_allowlist=c.ip_allowlist,
                      juju_max_users=c.juju_max_users, status=c.status, registered_at=c.registered_at,
                      terminated_at=c.terminated_at)


def my_permissions_out(user_id: str, grant: dict[str, Any] | None) -> MyPermissionsOut:
    grant = grant or {}
    held = {s: v for s, v in grant.get("permissions", {}).items() if v}
    return MyPermissionsOut(user_id=grant.get("user_id", user_id), company_id=grant.get("company_id"),
                            permissions=[HeldPermissionOut(system=s, value=held.get(s), label=label(s, held.get(s)))
                                         for s in ALL_SYSTEMS])


def request_out(r: rules.PermissionRequest) -> RequestOut:
    shown = rules.display(r)
    return RequestOut(
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


def review_user_out(e: ReviewEntry) -> ReviewUserOut:
    return ReviewUserOut(user_id=e.user_id, name_kanji=e.name_kanji, name_kana=e.name_kana, contractor=e.contractor,
                         permissions=e.permissions,
                         permission_labels={s: label(s, v) for s, v in e.permissions.items()},
                         last_login_at=e.last_login_at, decision=e.decision,
                         decision_label=DECISION_LABELS[e.decision], decided_at=e.decided_at,
                         request_id=e.request_id)


def review_out(c: Campaign) -> ReviewOut:
    return ReviewOut(review_id=c.id, started_at=c.started_at, started_by=c.started_by, status=c.status,
                     users=[review_user_out(e) for e in c.entries])
