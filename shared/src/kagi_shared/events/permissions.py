"""Events of the permissions service.

``permissions.events`` (key: the request id, or the company id for company events) tells the
rest of Kagi what happened; ``permissions.grants.<system>`` carries one ``GrantCommanded`` per
user and system to the target system (key: the user id, so one user's commands stay ordered);
target systems answer with ``GrantAcknowledged`` on ``permissions.acks`` (key: the request id).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from kagi_shared.events.envelope import Event, register

RequestKind = Literal["new", "change", "revoke"]
AckOutcome = Literal["applied", "failed"]


class CompanyRegistered(Event, frozen=True, tag="kagi.permissions.company_registered"):
    company_id: str
    name: str
    roles: list[str]


class CompanyChanged(Event, frozen=True, tag="kagi.permissions.company_changed"):
    company_id: str
    changed: list[str]


class CompanyTerminated(Event, frozen=True, tag="kagi.permissions.company_terminated"):
    company_id: str
    revoked_users: int


class RequestSubmitted(Event, frozen=True, tag="kagi.permissions.request_submitted"):
    request_id: str
    company_id: str
    kind: RequestKind
    user_id: str
    systems: list[str]


class RequestAccepted(Event, frozen=True, tag="kagi.permissions.request_accepted"):
    request_id: str
    accepted_on: date
    batch_date: date


class RequestCancelled(Event, frozen=True, tag="kagi.permissions.request_cancelled"):
    request_id: str
    reason: str


class SystemCompleted(Event, frozen=True, tag="kagi.permissions.system_completed"):
    request_id: str
    system: str
    by: Literal["ack", "operator"]


class DeliveryFailed(Event, frozen=True, tag="kagi.permissions.delivery_failed"):
    request_id: str
    system: str
    reason: str


class AckOverdueFlagged(Event, frozen=True, tag="kagi.permissions.ack_overdue_flagged"):
    """A grant command got no ack within the SLA (a reminder for the operator)."""

    request_id: str
    system: str
    command_id: str
    sent_at: datetime


class RequestCompleted(Event, frozen=True, tag="kagi.permissions.request_completed"):
    request_id: str
    user_id: str


class AccessChanged(Event, frozen=True, tag="kagi.permissions.access_changed"):
    """A user's permissions changed on one system (key: the user id, so one user's changes stay ordered).

    ``permissions`` is what the user holds now on every system (PMS for a company admin); lifecycle
    enrols an ID that gained a system and disables one that holds nothing (``reason`` says why)."""

    user_id: str
    company_id: str
    system: str
    before: str | None
    after: str | None
    permissions: dict[str, str]
    reason: Literal["request", "company_terminated"] = "request"


class GrantCommanded(Event, frozen=True, tag="kagi.permissions.grant_commanded"):
    """One command to a target system: set this user's permission to ``after`` (None = revoke)."""

    command_id: str
    request_id: str
    company_id: str
    user_id: str
    system: str
    action: Literal["grant", "change", "revoke"]
    before: str | None
    after: str | None
    effective_on: date | None
    attempt: int = 1


class GrantAcknowledged(Event, frozen=True, tag="kagi.permissions.grant_acknowledged"):
    """A target system's answer to a ``GrantCommanded`` (sent by the target system, not by Kagi)."""

    command_id: str
    request_id: str
    system: str
    user_id: str
    outcome: AckOutcome
    reason: str | None = None


register(CompanyRegistered, CompanyChanged, CompanyTerminated, RequestSubmitted, RequestAccepted, RequestCancelled,
         SystemCompleted, DeliveryFailed, AckOverdueFlagged, RequestCompleted, AccessChanged, GrantCommanded,
         GrantAcknowledged)
