"""Event Structs of every service; importing this package registers them all."""

from kagi_shared.events import audit, invite, lifecycle, notify, permissions
from kagi_shared.events.envelope import (
    Envelope,
    Event,
    UnknownEventError,
    decode,
    decode_data,
    decode_envelope,
    encode,
    event_type,
    kafka_headers,
    new_envelope,
    registered_types,
)

__all__ = [
    "Envelope",
    "Event",
    "UnknownEventError",
    "audit",
    "decode",
    "decode_data",
    "decode_envelope",
    "encode",
    "event_type",
    "invite",
    "kafka_headers",
    "lifecycle",
    "new_envelope",
    "notify",
    "permissions",
    "registered_types",
]
