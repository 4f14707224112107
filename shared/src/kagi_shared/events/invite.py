"""Events of the invite service (topic ``invite.events``, key: the owner's account id)."""

from __future__ import annotations

from datetime import datetime

from kagi_shared.events.envelope import Event, register


class StepUpCodeIssued(Event, frozen=True, tag="kagi.invite.step_up_code_issued"):
    account_id: str
    code_id: str
    expires_at: datetime


class StepUpVerified(Event, frozen=True, tag="kagi.invite.step_up_verified"):
    account_id: str
    code_id: str
    valid_until: datetime


class StepUpFailed(Event, frozen=True, tag="kagi.invite.step_up_failed"):
    account_id: str
    code_id: str | None
    reason: str


register(StepUpCodeIssued, StepUpVerified, StepUpFailed)
