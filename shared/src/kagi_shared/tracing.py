"""OpenTelemetry traces across HTTP and Kafka; the OTLP exporter is off unless an endpoint is set.

- HTTP: every process opens a SERVER span per request, continuing the caller's W3C
  ``traceparent``; the gateway's calls to services carry it on.
- Kafka: ``new_envelope`` stamps the current context into the CloudEvents distributed-tracing
  extension (``traceparent``); consumers continue the trace from it, so a mail sent by notify
  belongs to the trace of the HTTP request that asked for it.
- Logs: every structlog line carries ``trace_id`` and ``span_id`` while a span is active.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["SpanKind", "configure_tracing", "current_traceparent", "inject", "log_ids", "mark_error", "span"]

from kagi_shared.settings import Settings

_configured = False


def configure_tracing(process: str, settings: Settings) -> None:
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": process, "service.namespace": "kagi"}))
    if settings.tracing.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.tracing.otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("kagi")


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def inject(headers: dict[str, str]) -> dict[str, str]:
    propagate.inject(headers)
    return headers


@contextmanager
def span(name: str, kind: SpanKind, parent: Mapping[str, str] | None = None,
         attributes: dict[str, Any] | None = None) -> Iterator[trace.Span]:
    """A span continuing ``parent`` (W3C headers) when given, else the current context."""
    ctx = propagate.extract(dict(parent)) if parent else None
    token = context.attach(ctx) if ctx is not None else None
    try:
        with tracer().start_as_current_span(name, kind=kind, attributes=attributes or {}) as current:
            yield current
    finally:
        if token is not None:
            context.detach(token)


def mark_error(current: trace.Span, status: int) -> None:
    current.set_attribute("http.response.status_code", status)
    if status >= 500:
        current.set_status(Status(StatusCode.ERROR))


def log_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the active span's ids on every line."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = f"{ctx.trace_id:032x}"
        event_dict["span_id"] = f"{ctx.span_id:016x}"
    return event_dict
