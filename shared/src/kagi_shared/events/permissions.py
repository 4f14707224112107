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


class CompanyEvent(Event, frozen=True):
    """An event about one company, the key of its record."""

    company_id: str


class RequestEvent(Event, frozen=True):
    """An event about one permission request, the key of its record."""

    request_id: str


class SystemStep(RequestEvent, frozen=True):
    """An event about one target system's part of a request."""

    system: str


class CompanyRegistered(CompanyEvent, frozen=True, tag="kagi.permissions.company_registered"):
    name: str
    roles: list[str]


class CompanyChanged(CompanyEvent, frozen=True, tag="kagi.permissions.company_changed"):
    changed: list[str]


class CompanyTerminated(CompanyEvent, frozen=True, tag="kagi.permissions.company_terminated"):
    revoked_users: int


class RequestSubmitted(RequestEvent, frozen=True, tag="kagi.permissions.request_submitted"):
    company_id: str
    kind: RequestKind
    user_id: str
    systems: list[str]


class RequestAccepted(RequestEvent, frozen=True, tag="kagi.permissions.request_accepted"):
    accepted_on: date
    batch_date: date


class RequestCancelled(RequestEvent, frozen=True, tag="kagi.permissions.request_cancelled"):
    reason: str


class SystemCompleted(SystemStep, frozen=True, tag="kagi.permissions.system_completed"):
    by: Literal["ack", "operator"]


class DeliveryFailed(SystemStep, frozen=True, tag="kagi.permissions.delivery_failed"):
    reason: str


class AckOverdueFlagged(SystemStep, frozen=True, tag="kagi.permissions.ack_overdue_flagged"):
    """A grant command got no ack within the SLA (a reminder for the operator)."""

    command_id: str
    sent_at: datetime


class RequestCompleted(RequestEvent, frozen=True, tag="kagi.permissions.request_completed"):
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
