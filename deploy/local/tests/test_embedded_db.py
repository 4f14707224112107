"""The embedded database's retryable-write records (``kagi_local.embedded_db``): what the server keeps, replays
and evicts is what SecantusDB's own registry does; only the cost of keeping them changed."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from secantus import transactions

from kagi_local.embedded_db import repair

LIFETIME = transactions._RETRYABLE_RECORD_LIFETIME_SECONDS
CAP = transactions._RETRYABLE_RECORD_MAX
REPLY = {"ok": 1.0, "n": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(clock: Clock) -> Any:
    repair()
    return transactions.TransactionRegistry(time_func=clock)


def write(registry: Any, session: int, number: int = 1) -> None:
    registry.record_retryable(b"s%d" % session, number, b"cmd", REPLY)


def replayed(registry: Any, session: int, number: int = 1) -> bool:
    return registry.retryable_reply(b"s%d" % session, number, b"cmd") is not None


def test_a_retried_write_is_answered_from_its_record_and_another_command_is_not(registry: Any) -> None:
    write(registry, 1)
    assert replayed(registry, 1)
    assert registry.retryable_reply(b"s1", 1, b"another command") is None
    assert not replayed(registry, 1, number=2)


def test_a_record_expires_after_its_lifetime(registry: Any, clock: Clock) -> None:
    write(registry, 1)
    clock.now += LIFETIME - 1
    write(registry, 2)
    assert replayed(registry, 1)
    clock.now += 2
    assert not replayed(registry, 1)
    assert replayed(registry, 2)


def test_over_the_cap_the_oldest_records_go_first(registry: Any, clock: Clock) -> None:
    for session in range(CAP + 5):
        clock.now += 0.001
        write(registry, session)
    assert len(registry._retryable) == CAP
    assert not any(replayed(registry, session) for session in range(5))
    assert replayed(registry, 5) and replayed(registry, CAP + 4)


def test_a_record_written_again_counts_from_its_last_write(registry: Any, clock: Clock) -> None:
    write(registry, 1)
    write(registry, 2)
    clock.now += LIFETIME - 1
    write(registry, 1)  # the same retry recorded again, later
    clock.now += 2
    assert replayed(registry, 1)
    assert not replayed(registry, 2)


class NoWalk(OrderedDict[Any, Any]):
    """Records that refuse to be walked whole: SecantusDB's own prune lists them all on every write."""

    def items(self) -> Any:
        raise AssertionError("a write walked every retryable-write record")


def test_a_write_with_the_cap_full_does_not_walk_every_record(registry: Any, clock: Clock) -> None:
    for session in range(CAP):
        write(registry, session)
    registry._retryable = NoWalk(registry._retryable)
    clock.now += 1
    for session in range(CAP, CAP + 100):
        write(registry, session)
        assert replayed(registry, session)
    assert len(registry._retryable) == CAP
    assert not replayed(registry, 0)
