"""Trace context travels from a request into the events it causes and on into their consumers."""

from __future__ import annotations

from typing import Any

import pytest

from kagi_shared.events import decode_envelope, encode, new_envelope
from kagi_shared.events import invite as ev
from kagi_shared.inbox import _traceparent
from kagi_shared.settings import load_settings
from kagi_shared.tracing import SpanKind, configure_tracing, log_ids, span


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    configure_tracing("test", load_settings({}))


def test_an_event_emitted_inside_a_request_carries_its_trace() -> None:
    incoming = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    with span("POST /api/v1/me/step-up", SpanKind.SERVER, incoming) as current:
        envelope = new_envelope(ev.StepUpFailed(account_id="a", code_id=None, reason="wrong"), source="s",
                                subject="a")
        ids = current.get_span_context()
    assert envelope.traceparent is not None
    _, trace_id, span_id, _ = envelope.traceparent.split("-")
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" == f"{ids.trace_id:032x}"
    assert span_id == f"{ids.span_id:016x}"
    assert decode_envelope(encode(envelope)).traceparent == envelope.traceparent


def test_a_consumer_continues_the_trace_and_logs_carry_its_ids() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    raw = encode(new_envelope(ev.StepUpFailed(account_id="a", code_id=None, reason="x"), source="s", subject="a"))
    assert _traceparent(raw) is None  # emitted outside any span: no context to continue
    seen: dict[str, Any] = {}
    with span("consume invite.events", SpanKind.CONSUMER, {"traceparent": parent}):
        seen = dict(log_ids(None, "info", {"event": "x"}))
    assert seen["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert len(seen["span_id"]) == 16 and seen["span_id"] != "00f067aa0ba902b7"
    assert "trace_id" not in log_ids(None, "info", {"event": "outside"})
    assert _traceparent(b"not json") is None


def test_the_kafka_record_carries_the_trace_in_its_headers() -> None:
    from kagi_shared.mongo import outbox_row
    from kagi_shared.outbox import record_headers

    incoming = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    with span("POST /api/v1/me/step-up", SpanKind.SERVER, incoming):
        envelope = new_envelope(ev.StepUpFailed(account_id="a", code_id=None, reason="wrong"), source="s",
                                subject="a")
    headers = dict(record_headers(outbox_row("invite.events", envelope)))
    assert headers["ce_id"] == envelope.id.encode() and headers["ce_type"] == envelope.type.encode()
    assert headers["traceparent"].decode() == envelope.traceparent
    assert headers["traceparent"].decode().split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"

    untraced = new_envelope(ev.StepUpFailed(account_id="a", code_id=None, reason="x"), source="s", subject="a")
    assert "traceparent" not in dict(record_headers(outbox_row("invite.events", untraced)))
