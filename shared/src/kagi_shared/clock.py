"""The one clock type: a function returning the current moment in UTC.

Every service takes it in its constructor (``clock: Clock = utc_now``) and ``bootstrap`` passes one in;
tests that need time to move pass their own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
