"""Session lifetimes (security): refresh tokens rotate on every use and a login's family has an absolute end. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class SessionPolicy:
    """A refresh token is valid ``refresh_ttl_s`` from its issue, and a family (one login) at most
    ``absolute_ttl_s`` (24 h) from its start however often it was refreshed."""

    refresh_ttl_s: int
    absolute_ttl_s: int

    def expires_at(self, now: datetime, started_at: datetime) -> datetime:
        """The expiry of a token issued ``now`` in a family started at ``started_at``."""
        return min(now + timedelta(seconds=self.refresh_ttl_s), started_at + timedelta(seconds=self.absolute_ttl_s))

    def family_start(self, started_at: datetime | None, expires_at: datetime) -> datetime:
        """A token from before the absolute lifetime existed counts from its own issue."""
        return started_at or expires_at - timedelta(seconds=self.refresh_ttl_s)

    def usable(self, expires_at: datetime, started_at: datetime, now: datetime) -> bool:
        return expires_at > now and started_at + timedelta(seconds=self.absolute_ttl_s) > now
