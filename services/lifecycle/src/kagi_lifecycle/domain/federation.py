"""External IDs (SNS連携): a verified (provider, subject) belongs to one account, one per provider. Pure."""

from __future__ import annotations

from datetime import datetime

import msgspec


class ExternalLink(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    subject: str
    account_id: str
    linked_at: datetime


class LinkedElsewhere(Exception):
    """The external ID already belongs to another account."""
