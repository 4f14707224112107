"""Prometheus metrics shared by every process (prometheus-client's default registry).

Every process serves ``GET /metrics`` on a port of its own, never where it answers requests: the gateway on
``KAGI_PORTS_GATEWAY_METRICS``, service APIs on ``KAGI_PORTS_API_METRICS_BASE`` + an offset, workers on
``KAGI_PORTS_WORKER_METRICS_BASE`` + the same offset. The monitoring namespace may reach those ports only.
Route labels use the path template (``/api/v1/me/step-up``), never raw paths, to keep cardinality bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

from kagi_shared.logging import get_logger

if TYPE_CHECKING:
    from kagi_shared.settings import Settings

log = get_logger(__name__)

METRICS_OFFSET = {"lifecycle": 1, "invite": 2, "permissions": 3, "notify": 4, "audit": 5}
"""A service's API and worker serve /metrics on their base port + this."""


def api_metrics_port(settings: Settings, service: str) -> int:
    """Where ``service``'s API serves /metrics: its own slot, or in the compact topology the one process's, which
    takes the first service's slot (that service's own API process never runs beside it)."""
    slot = "lifecycle" if settings.topology == "compact" or service == "compact" else service
    return settings.ports.api_metrics_base + METRICS_OFFSET[slot]

HTTP_REQUESTS = Counter("kagi_http_requests_total", "HTTP requests answered", ["process", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "kagi_http_request_duration_seconds", "HTTP request latency", ["process", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
)
EVENTS_CONSUMED = Counter("kagi_events_consumed_total", "Events seen by a consumer, by outcome",
                          ["consumer", "topic", "outcome"])
OUTBOX_PUBLISHED = Counter("kagi_outbox_published_total", "Outbox rows published to Kafka", ["service"])
OUTBOX_BACKLOG = Gauge("kagi_outbox_backlog", "Outbox rows not yet published", ["service"])
AUDIT_SPOOL_PENDING = Gauge("kagi_audit_spool_pending", "Audit entries in the gateway's spool, not yet on Kafka")
DELIVERIES = Counter("kagi_notify_deliveries_total", "Notification delivery attempts by result",
                     ["channel", "template", "result"])


LADDER_STAGES_APPLIED = Counter("kagi_lifecycle_ladder_stages_applied_total",
                                "Inactivity stages applied by sweeps in this process", ["stage"])
ACCOUNTS = Gauge("kagi_lifecycle_accounts",
                 "Accounts by status and the last inactivity stage applied (from the database at scrape time)",
                 ["status", "ladder_stage"])
PERMISSION_REQUESTS = Gauge("kagi_permissions_requests",
                            "Permission requests by kind and status (from the database at scrape time)",
                            ["kind", "status"])
PERMISSION_SYSTEMS = Gauge("kagi_permissions_system_states",
                           "Per-target-system delivery states of permission requests (at scrape time)",
                           ["system", "state"])
DB_COMMANDS = Counter("kagi_db_commands_total", "Database commands this process sent (PyMongo command monitoring)",
                      ["service", "command", "collection"])
INTERNAL_CALLS = Counter("kagi_internal_calls_total", "Calls to the services' internal APIs, by route template",
                         ["service", "method", "route"])
SCRAPE_REFRESH_FAILURES = Counter("kagi_metrics_refresh_failures_total",
                                  "State gauges that could not be refreshed at scrape time", ["hook"])


process = "unnamed"
"""This process's name as its logs give it (``lifecycle-api``, ``notify-worker``, ``gateway``): the ``service``
label of the counters above. Its composition root names it (``name_process``) before any client exists."""


def name_process(name: str) -> None:
    global process
    process = name


def prime(counter: Counter, *label_sets: Sequence[str]) -> None:
    """Create these series at 0 when the process starts. A counter with no series yet makes ``increase()`` return
    nothing (an alert on "nothing happened" never fires) and hides its first increment (the first sample a
    series shows is its start, not an increase)."""
    for labels in label_sets:
        counter.labels(*labels)


ScrapeHook = Callable[[], Awaitable[None]]
_scrape_hooks: dict[str, tuple[ScrapeHook, float]] = {}
_next_refresh: dict[str, float] = {}


def on_scrape(name: str, hook: ScrapeHook, min_interval_s: float = 15.0) -> None:
    """Refresh state gauges from the service's own database when Prometheus scrapes, at most every
    ``min_interval_s``: the numbers come from the source of truth (no counter drifts after a restart), and a
    scrape every few seconds from several Prometheus replicas costs one aggregation per interval. Every replica
    of an API reports the same figures: dashboards take ``max``, not ``sum``."""
    _scrape_hooks[name] = (hook, min_interval_s)
    _next_refresh.pop(name, None)
    prime(SCRAPE_REFRESH_FAILURES, (name,))


async def _refresh(timeout_s: float = 3.0) -> None:
    now = time.monotonic()
    for name, (hook, interval) in list(_scrape_hooks.items()):
        if _next_refresh.get(name, 0.0) > now:
            continue
        _next_refresh[name] = now + interval
        try:
            await asyncio.wait_for(hook(), timeout_s)
        except Exception as exc:  # a slow or absent database must not break the scrape of everything else
            SCRAPE_REFRESH_FAILURES.labels(name).inc()
            log.warning("metrics.refresh_failed", hook=name, error=f"{type(exc).__name__}: {exc}")


def set_counts(gauge: Gauge, rows: Sequence[tuple[tuple[str, ...], int]]) -> None:
    """Replace every series of ``gauge``: a state that emptied must read 0 or vanish, not keep its old count."""
    gauge.clear()
    for labels, count in rows:
        gauge.labels(*labels).set(count)


def observe_http(process: str, method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(process, method, route, str(status)).inc()
    HTTP_LATENCY.labels(process, method, route).observe(seconds)


StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def scrape_app(loop: asyncio.AbstractEventLoop, wait_s: float = 5.0) -> WsgiApp:
    """A WSGI app answering ``/metrics`` from another thread: the state gauges are refreshed on ``loop`` (the
    API's, where its database client lives) first; if that loop does not answer in ``wait_s``, the scrape
    still gets every other series (and the refresh failure counted)."""
    exposition = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return [b""]
        try:
            asyncio.run_coroutine_threadsafe(_refresh(), loop).result(wait_s)
        except Exception as exc:  # a stuck loop must not fail the scrape of everything else
            SCRAPE_REFRESH_FAILURES.labels("loop").inc()
            log.warning("metrics.refresh_failed", hook="loop", error=f"{type(exc).__name__}: {exc}")
        result: Iterable[bytes] = exposition(environ, start_response)
        return result

    return app
