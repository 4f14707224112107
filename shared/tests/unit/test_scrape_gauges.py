"""State gauges refreshed at scrape time: at most once per interval, and a failing source never breaks the scrape."""

from __future__ import annotations

import asyncio
import socket

import httpx
from prometheus_client import REGISTRY, Gauge

from kagi_shared import metrics
from kagi_shared.metrics import on_scrape, scrape_app, set_counts
from kagi_shared.worker_probes import serve_probes

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
        assert REGISTRY.get_sample_value("kagi_metrics_refresh_failures_total", {"hook": "test.broken"}) >= 1
        assert REGISTRY.get_sample_value("kagi_metrics_refresh_failures_total", {"hook": "test.hanging"}) >= 1
    finally:
        metrics._scrape_hooks.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_metrics_port_refreshes_on_the_api_loop_and_answers_only_metrics() -> None:
    """An API's /metrics is served from a thread on a port of its own; the gauges are refreshed on the API's loop
    (where its database client lives), and a loop that does not answer in time leaves the scrape answering."""
    calls: list[int] = []

    async def hook() -> None:
        calls.append(1)
        set_counts(STATES, [(("open",), 7)])

    port = _free_port()
    server = serve_probes(scrape_app(asyncio.get_running_loop(), wait_s=0.5), "127.0.0.1", port)
    on_scrape("test.port", hook, min_interval_s=0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            scraped = await http.get("/metrics")
            assert scraped.status_code == 200 and 'kagi_test_states{state="open"} 7.0' in scraped.text
            assert calls == [1]
            assert (await http.get("/ready")).status_code == 404
    finally:
        metrics._scrape_hooks.clear()
        server.shutdown()


def test_a_stuck_loop_is_counted_and_the_scrape_still_answers() -> None:
    loop = asyncio.new_event_loop()  # never run: as stuck as a loop gets
    before = REGISTRY.get_sample_value("kagi_metrics_refresh_failures_total", {"hook": "loop"}) or 0.0
    port = _free_port()
    server = serve_probes(scrape_app(loop, wait_s=0.1), "127.0.0.1", port)
    try:
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert scraped.status_code == 200 and "kagi_metrics_refresh_failures_total" in scraped.text
        assert REGISTRY.get_sample_value("kagi_metrics_refresh_failures_total", {"hook": "loop"}) == before + 1
    finally:
        server.shutdown()
        loop.close()
