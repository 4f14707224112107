"""State gauges refreshed at scrape time: at most once per interval, and a failing source never breaks the scrape."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY, Gauge

from kagi_shared import metrics
from kagi_shared.metrics import on_scrape, set_counts

STATES = Gauge("kagi_test_states", "test gauge", ["state"])


async def test_hooks_run_at_most_once_per_interval_and_replace_every_series() -> None:
    calls: list[int] = []
    rows = [(("open",), 3), (("closed",), 1)]

    async def hook() -> None:
        calls.append(1)
        set_counts(STATES, rows)

    on_scrape("test.states", hook, min_interval_s=60)
    await metrics._refresh()
    await metrics._refresh()
    assert len(calls) == 1
    assert REGISTRY.get_sample_value("kagi_test_states", {"state": "open"}) == 3

    rows = [(("closed",), 4)]  # every open item closed: the open series must not keep its old count
    on_scrape("test.states", hook, min_interval_s=0)
    try:
        await metrics._refresh()
    finally:
        metrics._scrape_hooks.clear()
    assert REGISTRY.get_sample_value("kagi_test_states", {"state": "open"}) is None
    assert REGISTRY.get_sample_value("kagi_test_states", {"state": "closed"}) == 4


async def test_a_failing_or_hanging_hook_is_counted_and_the_scrape_still_answers() -> None:
    async def broken() -> None:
        raise ConnectionError("database down")

    async def hanging() -> None:
        await asyncio.sleep(30)

    on_scrape("test.broken", broken, min_interval_s=0)
    on_scrape("test.hanging", hanging, min_interval_s=0)
    try:
        await metrics._refresh(timeout_s=0.05)
        reply = await metrics.metrics_handler.fn()  # the handler itself, as Litestar calls it
        assert b"kagi_metrics_refresh_failures_total" in reply.content
        assert REGISTRY.get_sample_value("kagi_metrics_refresh_failures_total", {"hook": "test.broken"}) >= 1
        assert REGISTRY.get_sample_value("kagi_metrics_refresh_failures_total", {"hook": "test.hanging"}) >= 1
    finally:
        metrics._scrape_hooks.clear()
