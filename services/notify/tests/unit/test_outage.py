"""The breaker over a channel's server: nothing tried while it is down, probes with capped exponential backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kagi_notify.domain.outage import Outage

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_probes_back_off_exponentially_up_to_the_cap_for_as_long_as_it_takes() -> None:
    outage = Outage(base_s=2, cap_s=60)
    assert not outage.down and outage.allows(T0)
    now, waits = T0, []
    for _ in range(10):  # about eight minutes down: far past any attempt budget
        assert outage.failed(now, "SMTPConnectError: refused")
        assert outage.down and not outage.allows(now)
        assert outage.retry_at is not None
        waits.append((outage.retry_at - now).total_seconds())
        now = outage.retry_at
        assert outage.allows(now)
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60, 60, 60]


def test_tries_already_under_way_do_not_push_the_probe_out() -> None:
    outage = Outage(base_s=2, cap_s=60)
    assert outage.failed(at(0), "refused")
    assert not outage.failed(at(0.5), "refused")  # sent before the first failure was known
    assert not outage.failed(at(1.5), "timed out")
    assert (outage.retry_at, outage.probes, outage.error) == (at(2), 1, "timed out")


def test_a_try_that_goes_through_closes_it() -> None:
    outage = Outage(base_s=2, cap_s=60)
    outage.failed(at(0), "refused")
    outage.failed(at(2), "refused")
    assert outage.recovered(at(6)) == timedelta(seconds=6)
    assert not outage.down and outage.allows(at(6)) and outage.probes == 0
    assert outage.recovered(at(7)) is None  # was not down
    assert outage.failed(at(8), "refused") and outage.retry_at == at(10)  # a new outage starts from the base
