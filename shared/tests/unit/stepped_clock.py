"""A monotonic clock a test moves by hand (``clock.now += 61``), for the parts that take ``time.monotonic``."""

from __future__ import annotations


class SteppedClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
