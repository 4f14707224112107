"""A consumer's fetch wait: short while records flow, growing to the idle wait once its partitions are quiet."""

from __future__ import annotations

from stepped_clock import SteppedClock

from kagi_shared.kafka import FetchWait


def test_wait_stays_short_while_records_flow() -> None:
    clock = SteppedClock(100.0)
    wait = FetchWait(25, 1000, 2.0, clock)
    for _ in range(50):
        clock.now += 0.5
        assert wait.after_fetch(True) == 25


def test_empty_fetches_keep_the_short_wait_until_the_partitions_have_been_quiet() -> None:
    clock = SteppedClock(100.0)
    wait = FetchWait(25, 1000, 2.0, clock)
    clock.now += 1.9
    assert wait.after_fetch(False) == 25


def test_a_quiet_consumer_doubles_its_wait_up_to_the_idle_wait_and_a_record_resets_it() -> None:
    clock = SteppedClock(100.0)
    wait = FetchWait(25, 1000, 2.0, clock)
    clock.now += 2.0
    seen = [wait.after_fetch(False) for _ in range(8)]
    assert seen == [50, 100, 200, 400, 800, 1000, 1000, 1000]
    assert wait.after_fetch(True) == 25
    clock.now += 0.1
    assert wait.after_fetch(False) == 25  # quiet only for a moment: still short


def test_an_idle_wait_below_the_busy_wait_is_raised_to_it() -> None:
    wait = FetchWait(500, 100, 0.0, SteppedClock(100.0))
    assert wait.after_fetch(False) == 500
