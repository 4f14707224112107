"""The topic catalogue: every topic, its key, who writes it and which event types it carries.

Kubernetes KafkaTopic/KafkaUser manifests and the AsyncAPI document are checked
against this list, so it is the single place a topic is declared.
"""

from __future__ import annotations

import msgspec

from kagi_shared.events import audit, invite, lifecycle, notify, permissions
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
    consumers=("notify", "lifecycle"),
    event_types=(invite.StepUpCodeIssued, invite.StepUpVerified, invite.StepUpFailed, invite.KeyIssued,
                 invite.KeyRevoked, invite.KeyVoided, invite.KeyRedeemed, invite.InvitationRequested,
                 invite.CoUserRemoved, invite.RepresentativeChanged, invite.ViewerKeyIssued,
                 invite.ViewerAdded, invite.ViewerRemoved, invite.ContractLinked, invite.ContractUnlinked,
                 invite.Withdrawn),
)
CONTRACTS_UPSERTED = Topic(
    name="contracts.upserted",
    key="supply-point number (electricity) or customer number (water)",
    producer="utility billing systems",
    consumers=("invite",),
    event_types=(invite.ContractUpserted, invite.WaterContractUpserted),
    retention_days=30,
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
        lifecycle.AccountUnlocked,
        lifecycle.PasswordChanged,
        lifecycle.AccountWarned,
        lifecycle.AccountPurged,
        lifecycle.RegistrationRequested,
        lifecycle.RegistrationCompleted,
        lifecycle.AccountWithdrawn,
        lifecycle.EnrolmentIssued,
        lifecycle.EnrolmentCompleted,
        lifecycle.AccountDisabled,
    ),
)
PERMISSIONS_EVENTS = Topic(
    name="permissions.events",
    key="request id (company events: the company id; access changes: the user id)",
    producer="permissions",
    consumers=("notify", "lifecycle"),
    event_types=(permissions.CompanyRegistered, permissions.CompanyChanged, permissions.CompanyTerminated,
                 permissions.RequestSubmitted, permissions.RequestAccepted, permissions.RequestCancelled,
                 permissions.SystemCompleted, permissions.DeliveryFailed, permissions.AckOverdueFlagged,
                 permissions.RequestCompleted, permissions.AccessChanged),
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
    event_types=(notify.NotificationDelivered, notify.NotificationFailed, notify.NotificationSkipped),
)
AUTH_LOGINS = Topic(
    name="auth.logins", key="login id", producer="external identity providers", consumers=("lifecycle",),
    event_types=(lifecycle.ExternalLoginReported,),
)
PERMISSIONS_ACKS = Topic(
    name="permissions.acks", key="request id", producer="target systems", consumers=("permissions",),
    event_types=(permissions.GrantAcknowledged,),
)
AUDIT_EVENTS = Topic(
    name="audit.events",
    key="actor id",
    producer="gateway, lifecycle",  # lifecycle: the break-glass 'kagi accounts unlock' (no gateway on that path)
    consumers=("audit",),
    event_types=(audit.AuditRecorded,),
    partitions=1,  # one partition: the ledger appends in one total order
    retention_days=365,
)
AUDIT_CHECKPOINTS = Topic(
    name="audit.checkpoints",
    key="ledger",
    producer="audit",
    consumers=(),  # read from its end by the audit API's verifier (no consumer group) and by outside auditors
    event_types=(audit.AuditCheckpoint,),
    partitions=1,  # "the latest" is the last record of the one partition
    retention_days=3650,
)
GRANT_TOPICS = tuple(
    Topic(
        name=f"permissions.grants.{system}",
        key="user id",
        producer="permissions",
        consumers=(f"target system {system.upper()}",),
        event_types=(permissions.GrantCommanded,),
    )
    for system in TARGET_SYSTEMS
)

CATALOGUE: tuple[Topic, ...] = (
    INVITE_EVENTS,
    CONTRACTS_UPSERTED,
    LIFECYCLE_EVENTS,
    PERMISSIONS_EVENTS,
    NOTIFY_REQUESTS,
    NOTIFY_DELIVERIES,
    AUTH_LOGINS,
    PERMISSIONS_ACKS,
    AUDIT_EVENTS,
    AUDIT_CHECKPOINTS,
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
