"""Every event type survives the trip through the JSON envelope unchanged."""

from __future__ import annotations

import typing
from datetime import UTC, date, datetime

import msgspec
import pytest

from kagi_shared.events import Event, UnknownEventError, decode, encode, new_envelope, registered_types
from kagi_shared.events import invite as ev
from kagi_shared.topics import CATALOGUE


def sample_value(info: msgspec.inspect.Type) -> object:
    match info:
        case msgspec.inspect.StrType():
            return "サンプル-1"
        case msgspec.inspect.IntType():
            return 3
        case msgspec.inspect.FloatType():
            return 12.5
        case msgspec.inspect.DateType():
            return date(2026, 11, 21)
        case msgspec.inspect.StructType(cls=cls, fields=fields):
            return cls(**{f.name: sample_value(f.type) for f in fields})
        case msgspec.inspect.TupleType(item_types=items):
            return tuple(sample_value(t) for t in items)
        case msgspec.inspect.VarTupleType(item_type=item):
            return (sample_value(item),)
        case msgspec.inspect.BoolType():
            return True
        case msgspec.inspect.DateTimeType():
            return datetime(2026, 11, 21, 5, 30, 15, 123000, tzinfo=UTC)
        case msgspec.inspect.LiteralType(values=values):
            return values[-1]
        case msgspec.inspect.ListType(item_type=item):
            return [sample_value(item)]
        case msgspec.inspect.DictType(key_type=k, value_type=v):
            return {sample_value(k): sample_value(v)}
        case msgspec.inspect.UnionType(types=types):
            return sample_value(next(t for t in types if not isinstance(t, msgspec.inspect.NoneType)))
    raise AssertionError(f"no sample for {info}")


def sample(cls: type[Event]) -> Event:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return cls(**{f.name: sample_value(f.type) for f in info.fields})


ALL_TYPES = sorted(registered_types().items())


@pytest.mark.parametrize(("type_name", "cls"), ALL_TYPES, ids=[t for t, _ in ALL_TYPES])
def test_every_event_type_round_trips(type_name: str, cls: type[Event]) -> None:
    data = sample(cls)
    envelope = new_envelope(data, source="kagi/test", subject="agg-1", correlation_id="req-1")
    raw = encode(envelope)

    decoded_envelope, decoded = decode(raw)

    assert decoded == data
    assert decoded_envelope.type == type_name
    assert decoded_envelope.subject == "agg-1"
    assert decoded_envelope.correlationid == "req-1"
    wire = msgspec.json.decode(raw)
    assert wire["specversion"] == "1.0"
    assert wire["data"]["type"] == type_name  # the payload is self-describing for other languages


def test_every_catalogued_event_type_is_registered() -> None:
    catalogued = {name for topic in CATALOGUE for name in topic.type_names}
    assert catalogued <= set(registered_types())


def test_payload_fields_are_camel_case_on_the_wire() -> None:
    raw = encode(new_envelope(sample(ev.StepUpCodeIssued), source="s", subject="a"))
    assert set(msgspec.json.decode(raw)["data"]) == {"type", "accountId", "codeId", "expiresAt"}


def test_unknown_type_and_newer_schema_are_refused() -> None:
    envelope = new_envelope(sample(ev.StepUpFailed), source="s", subject="a")
    forged = msgspec.json.decode(encode(envelope))
    forged["type"] = "kagi.invite.never_heard_of"
    with pytest.raises(UnknownEventError, match="unknown event type"):
        decode(msgspec.json.encode(forged))
    forged["type"] = "kagi.invite.step_up_failed"
    forged["schemaversion"] = 99
    with pytest.raises(UnknownEventError, match="newer"):
        decode(msgspec.json.encode(forged))


def test_garbage_is_a_decode_error_not_a_crash() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode(b"\x00not json")
    with pytest.raises(msgspec.ValidationError):
        decode(b'{"id": 1}')


def test_event_payload_literal_is_validated() -> None:
    from kagi_shared.events import lifecycle

    raw = encode(new_envelope(sample(lifecycle.AccountLocked), source="s", subject="a"))
    wire = msgspec.json.decode(raw)
    wire["data"]["reason"] = "because"
    with pytest.raises(msgspec.ValidationError):
        decode(msgspec.json.encode(wire))
    assert typing.get_args(lifecycle.LockReason)
