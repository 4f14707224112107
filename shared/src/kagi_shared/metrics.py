"""Prometheus metrics shared by every process (prometheus-client's default registry).

HTTP processes expose them at ``GET /metrics``; workers on ``KAGI_PORTS_WORKER_METRICS_BASE`` + an offset.
Route labels use the path template (``/api/v1/me/step-up``), never raw paths, to keep cardinality bounded.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter("kagi_http_requests_total", "HTTP requests answered", ["process", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "kagi_http_request_duration_seconds", "HTTP request latency", ["process", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
)
EVENTS_CONSUMED = Counter("kagi_events_consumed_total", "Events seen by a consumer, by outcome",
                          ["consumer", "topic", "outcome"])
OUTBOX_PUBLISHED = Counter("kagi_outbox_published_total", "Outbox rows published to Kafka", ["service"])
OUTBOX_BACKLOG = Gauge("kagi_outbox_backlog", "Outbox rows not yet published", ["service"])
DELIVERIES = Counter("kagi_notify_deliveries_total", "Notification delivery attempts by result",
                     ["channel", "template", "result"])


def observe_http(process: str, method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(process, method, route, str(status)).inc()
    HTTP_LATENCY.labels(process, method, route).observe(seconds)


@get("/metrics", include_in_schema=False, sync_to_thread=False, opt={"roles": ("public",)})
def metrics_handler() -> Response[Any]:
    return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)
