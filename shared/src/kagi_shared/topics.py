"""The topic catalogue: every topic, its key, who writes it and which event types it carries.

Kubernetes KafkaTopic/KafkaUser manifests and the AsyncAPI document are checked
against this list, so it is the single place a topic is declared.
"""

from __future__ import annotations

import msgspec

from kagi_shared.events import invite, lifecycle, notify, permissions
from kagi_shared.events.envelope import Event, event_type


class Topic(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    key: str
    producer: str
    consumers: tuple[str, ...]
    event_types: tuple[type[Event], ...] = ()
    partitions: int = 4
    retention_days: int = 7

    @property
    def dlt(self) -> str:
        return f"{self.name}.dlt"

    @property
    def type_names(self) -> list[str]:
        return [event_type(t) for t in self.event_types]


TARGET_SYSTEMS = ("taxis", "johs", "juju", "loacus", "infosite", "pms")

INVITE_EVENTS = Topic(
    name="invite.events",
    key="owner account id",
    producer="invite",
    consumers=("notify",),
    event_types=(invite.StepUpCodeIssued, invite.StepUpVerified, invite.StepUpFailed),
)
LIFECYCLE_EVENTS = Topic(
    name="lifecycle.events",
    key="account id",
    producer="lifecycle",
    consumers=("invite", "permissions", "notify"),
    event_types=(
        lifecycle.AccountCreated,
        lifecycle.LoggedIn,
        lifecycle.LoginFailed,
        lifecycle.AccountLocked,
    ),
)
PERMISSIONS_EVENTS = Topic(
    name="permissions.events",
    key="request id",
    producer="permissions",
    consumers=("notify",),
    event_types=(permissions.CompanyRegistered,),
)
NOTIFY_REQUESTS = Topic(
    name="notify.requests",
    key="recipient",
    producer="invite,lifecycle,permissions",
    consumers=("notify",),
    event_types=(notify.NotificationRequested,),
    retention_days=1,
)
NOTIFY_DELIVERIES = Topic(
    name="notify.deliveries",
    key="delivery id",
    producer="notify",
    consumers=(),
    event_types=(notify.NotificationDelivered, notify.NotificationFailed),
)
AUTH_LOGINS = Topic(
    name="auth.logins", key="account id", producer="external identity providers", consumers=("lifecycle",)
)
PERMISSIONS_ACKS = Topic(
    name="permissions.acks", key="request id", producer="target systems", consumers=("permissions",)
)
AUDIT_EVENTS = Topic(name="audit.events", key="actor id", producer="gateway", consumers=(), retention_days=365)
GRANT_TOPICS = tuple(
    Topic(
        name=f"permissions.grants.{system}",
        key="user id",
        producer="permissions",
        consumers=(f"target system {system.upper()}",),
    )
    for system in TARGET_SYSTEMS
)

CATALOGUE: tuple[Topic, ...] = (
    INVITE_EVENTS,
    LIFECYCLE_EVENTS,
    PERMISSIONS_EVENTS,
    NOTIFY_REQUESTS,
    NOTIFY_DELIVERIES,
    AUTH_LOGINS,
    PERMISSIONS_ACKS,
    AUDIT_EVENTS,
    *GRANT_TOPICS,
)


def by_name(name: str) -> Topic:
    for topic in CATALOGUE:
        if topic.name == name:
            return topic
    raise KeyError(name)


def all_topic_names(with_dlt: bool = True) -> list[str]:
    names = [t.name for t in CATALOGUE]
    if with_dlt:
        names += [t.dlt for t in CATALOGUE if t.consumers]
    return names
