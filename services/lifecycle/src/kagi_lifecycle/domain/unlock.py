"""Unlock requests (ロック解除申請): the user files one, an operator decides it. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

RequestStatus = Literal["pending", "approved", "rejected", "refused"]


class UnlockRequest(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    login_id: str
    status: RequestStatus
    lock_reason: str | None
    message: str
    filed_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    note: str | None = None
    purge_date: str | None = None
