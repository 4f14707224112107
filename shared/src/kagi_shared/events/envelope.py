"""The event envelope: CloudEvents 1.0 structured mode, JSON via msgspec.

Every payload is a tagged msgspec Struct (the tag is the CloudEvents ``type``), so a
consumer in any language reads ``type`` at the top and decodes ``data`` accordingly.
The envelope's ``subject`` is the aggregate id and doubles as the Kafka key, which
keeps the events of one aggregate in order on one partition.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", rename="camel"):
    """Base of every event payload; subclasses set ``tag=`` to their CloudEvents type."""

    schema_version: ClassVar[int] = 1


E = TypeVar("E", bound=Event)


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    source: str
    type: str
    time: datetime
    subject: str
    data: msgspec.Raw
    specversion: str = "1.0"
    datacontenttype: str = "application/json"
    correlationid: str | None = None
    schemaversion: int = 1
    traceparent: str | None = None
    """CloudEvents distributed-tracing extension: the W3C trace context of the code that emitted it."""


class UnknownEventError(ValueError):
    """An envelope whose type or schema version this code does not know."""


_REGISTRY: dict[str, type[Event]] = {}


def register(*types: type[Event]) -> None:
    for cls in types:
        tag = cls.__struct_config__.tag
        assert isinstance(tag, str), f"{cls.__name__} needs a string tag"
        existing = _REGISTRY.get(tag)
        if existing is not None and existing is not cls:
            raise ValueError(f"event type {tag} registered twice")
        _REGISTRY[tag] = cls


def registered_types() -> dict[str, type[Event]]:
    return dict(_REGISTRY)


def event_type(cls_or_event: type[Event] | Event) -> str:
    tag = cls_or_event.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


_encoder = msgspec.json.Encoder()
_envelope_decoder = msgspec.json.Decoder(Envelope)


def new_envelope(
    data: Event, *, source: str, subject: str, correlation_id: str | None = None, event_id: str | None = None
) -> Envelope:
    # Imported here: reading the catalogue (``kagi catalogue``, the AsyncAPI document) needs no tracing SDK.
    from kagi_shared.tracing import current_traceparent

    return Envelope(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=event_type(data),
        time=datetime.now(UTC),
        subject=subject,
        data=msgspec.Raw(_encoder.encode(data)),
        correlationid=correlation_id,
        schemaversion=data.schema_version,
        traceparent=current_traceparent(),
    )


def encode(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


CLOUDEVENTS_JSON = "application/cloudevents+json; charset=UTF-8"


def kafka_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """The Kafka headers of every record Kagi writes: the one place they are made (outbox relay, audit, DLT, tools).

    The value is the CloudEvents structured-mode JSON, so ``content-type`` says so (a CloudEvents SDK then reads
    the value, not the headers, as the event). The ``ce_*`` attributes repeat the envelope's under the Kafka
    binding's names, so a consumer, router or proxy can route, filter and deduplicate without decoding the value;
    ``traceparent`` joins the trace (W3C Trace Context).
    """
    headers = [
        ("content-type", CLOUDEVENTS_JSON.encode()),
        ("ce_specversion", envelope.specversion.encode()),
        ("ce_id", envelope.id.encode()),
        ("ce_source", envelope.source.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_time", envelope.time.isoformat().encode()),
        ("ce_subject", envelope.subject.encode()),
        ("ce_schemaversion", str(envelope.schemaversion).encode()),
    ]
    if envelope.traceparent:
        headers.append(("traceparent", envelope.traceparent.encode()))
    return headers


def decode_envelope(raw: bytes) -> Envelope:
    """Decode the envelope only; raises ``msgspec.DecodeError``/``ValidationError`` on garbage."""
    return _envelope_decoder.decode(raw)


def decode_data(envelope: Envelope) -> Event:
    cls = _REGISTRY.get(envelope.type)
    if cls is None:
        raise UnknownEventError(f"unknown event type {envelope.type!r}")
    if envelope.schemaversion > cls.schema_version:
        raise UnknownEventError(
            f"{envelope.type} schema version {envelope.schemaversion} is newer than {cls.schema_version}"
        )
    return msgspec.json.decode(envelope.data, type=cls)


def decode(raw: bytes) -> tuple[Envelope, Event]:
    envelope = decode_envelope(raw)
    return envelope, decode_data(envelope)


def to_builtins(envelope: Envelope) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.json.decode(encode(envelope))
    return out
