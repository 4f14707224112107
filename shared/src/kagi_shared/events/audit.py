"""Audit events (topic ``audit.events``, one partition: one ordered, hash-chained ledger)."""

from __future__ import annotations

from datetime import datetime

from kagi_shared.events.envelope import Event, register


class AuditRecorded(Event, frozen=True, tag="kagi.audit.recorded"):
    """An admin or operator action: who, what, when, from where, and the result."""

    actor_id: str
    actor_login_id: str
    roles: list[str]
    action: str
    """``METHOD /route/template``, e.g. ``POST /api/v1/operator/companies``."""
    target: str
    """The concrete path acted on."""
    status: int
    outcome: str
    """success | refused | error"""
    ip: str | None
    request_id: str | None
    at: datetime


class AuditCheckpoint(Event, frozen=True, tag="kagi.audit.checkpoint"):
    """The ledger's length and head hash, signed with the audit key (topic ``audit.checkpoints``).

    Published after every append; a verifier compares the ledger with the latest one, so a database writer who
    removes the newest entries (leaving a chain that is consistent in itself) is found.
    """

    entries: int
    head_hash: str
    at: datetime
    signature: str
    """HMAC-SHA256 (hex) over entries, head hash and time, under a key derived from the audit key."""


register(AuditRecorded)
register(AuditCheckpoint)
