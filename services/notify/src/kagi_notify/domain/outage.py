"""A channel's server being down, as a circuit breaker. Pure: the caller passes the time.

While the server is down no delivery is tried (they wait, spending no attempts); at ``retry_at``
one try probes it. A failed probe doubles the wait up to the cap, a success closes the breaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class Outage:
    base_s: float
    cap_s: float
    since: datetime | None = None
    retry_at: datetime | None = None
    probes: int = 0
    """Failed tries since it went down, each one a probe round (failures of tries already in flight are not)."""
    error: str = ""

    @property
    def down(self) -> bool:
        return self.since is not None

    def allows(self, now: datetime) -> bool:
        return self.retry_at is None or now >= self.retry_at

    def failed(self, now: datetime, error: str) -> bool:
        """Record a try that found the server down; ``True`` if it starts a new probe round (worth a log line)."""
        self.error = error
        if not self.allows(now):  # a try that was already under way when another one opened the breaker
            return False
        if self.since is None:
            self.since = now
        self.probes += 1
        self.retry_at = now + timedelta(seconds=min(self.base_s * 2 ** (self.probes - 1), self.cap_s))
        return True

    def recovered(self, now: datetime) -> timedelta | None:
        """Record a try that went through; how long the server was down, if it was."""
        since = self.since
        self.since = self.retry_at = None
        self.probes = 0
        self.error = ""
        return now - since if since is not None else None
