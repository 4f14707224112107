"""Typed settings from the environment, grouped by concern, behind one cached accessor.

Every field has a default that runs the embedded setup on loopback; pointing
``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URI`` / ``SMTP_URL`` at real servers is all
it takes to leave it. A bad value fails at start-up with the variable's name and
the reason, never later at first use.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec


class SettingsError(ValueError):
    """A setting from the environment is missing or malformed."""


# Defaults good for a laptop and CI only: under `KAGI_ENV=prod` a secret left at its default is not held at all
# (empty), and a process refuses to start without the secrets it needs (``require_secrets``).
SERVICE_NAMES = ("lifecycle", "invite", "permissions", "notify", "audit")
DEV_SECRETS = {
    "jwt_secret": "dev-only-change-me-dev-only-change-me",
    "code_pepper": "dev-only-code-pepper",
    "internal_token": "dev-internal-token",
    "audit_key": "dev-only-audit-chain-key",
    "notify_key": "dev-only-notify-requests-key",
    **{f"internal_token_{name}": "" for name in SERVICE_NAMES},
}
SECRET_MIN_BYTES = 32
# Values shipped in examples, docs and earlier manifests; refused in production whatever their length.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "replace-me", "replaceme", "placeholder", "example",
                       "secret", "password", "dev-only", "todo", "xxxx")


class Ports(msgspec.Struct, frozen=True, kw_only=True):
    """Loopback ports of the embedded infrastructure and of every process."""

    kafka: int = 19092
    mongo: int = 27117
    smtp: int = 2525
    gateway: int = 8000
    lifecycle: int = 8101
    invite: int = 8102
    permissions: int = 8103
    notify: int = 8104
    audit: int = 8105
    compact: int = 8100
    """The one process serving every internal API when ``topology`` is ``compact``."""
    gateway_metrics: int = 9100
    """The gateway's /metrics, never on its public port; 0 turns it off."""
    worker_metrics_base: int = 9100
    """Workers serve /metrics on this + 1 (lifecycle), 2 (invite), 3 (permissions), 4 (notify); 0 turns it off."""
    api_metrics_base: int = 9110
    """Service APIs serve /metrics on this + 1 (lifecycle) .. 5 (audit), never on their API port, so whoever may
    scrape (the monitoring namespace) cannot reach an internal API; 0 turns it off."""


class KafkaSettings(msgspec.Struct, frozen=True, kw_only=True):
    bootstrap_servers: str | None = None
    """Real brokers; unset means the embedded broker on ``ports.kafka``."""
    enable_idempotence: bool = False
    """On against real Kafka; the embedded broker lacks InitProducerId."""
    default_partitions: int = 4
    fetch_max_wait_ms: int = 100
    """How long a fetch may wait for data while records flow. The embedded broker answers a fetch at once when it
    has records, otherwise only at fixed points of the wait (half of it, then all of it), not when data arrives:
    a record between two others reaches its consumer up to this much later (measured on the embedded broker,
    records 50–400 ms apart: p50 4–7 ms, p90 15 ms at 25 ms; p50 13–16 ms, p90 ~50 ms, max 78 ms at 100 ms).
    Under load most consumers see a record only every few hundred milliseconds, and their fetches every 25 ms
    were half the broker's CPU: at 30 requests/s of the system mix the broker took 21 % of a core at 25 ms and
    11 % at 100 ms, all processes together 148 % and 128 %."""
    fetch_max_wait_idle_ms: int = 2000
    """The wait once a consumer's partitions have been quiet for ``fetch_quiet_after_s`` (reached by doubling):
    an idle consumer then asks the broker every two seconds instead of forty times a second (the first event
    after a quiet spell waits up to ~1½ s on the embedded broker; the drills allow a minute). Against real Kafka,
    which answers as soon as data arrives, 500 for both waits is the usual choice."""
    fetch_quiet_after_s: float = 2.0
    fetch_recheck_ms: Annotated[int, msgspec.Meta(gt=0)] = 2000
    """aiokafka's ``consumer_timeout_ms``: the longest a consumer's background fetch loop sleeps before it looks
    again at its partitions. Everything that loop must act on (a fetch answered, records taken, a rebalance, a
    seek, a pause lifted, stale metadata) wakes it at once, so this is only a backstop; aiokafka's 200 ms cost
    every idle consumer five wake-ups a second."""
    security_protocol: Literal["PLAINTEXT", "SSL"] = "PLAINTEXT"
    """SSL with the files below for Strimzi's TLS listener and KafkaUser certificates."""
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    rebalance_timeout_s: float = 5.0
    session_timeout_s: float = 6.0
    heartbeat_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    """A third of the session timeout, as Kafka advises. Heartbeats were most of an idle broker's requests at 1 s;
    a member learns of a rebalance from its next heartbeat, so this is also how late it may join one."""

    def __post_init__(self) -> None:
        if self.heartbeat_interval_s >= self.session_timeout_s:
            raise ValueError("KAGI_KAFKA_HEARTBEAT_INTERVAL_S must be below KAGI_KAFKA_SESSION_TIMEOUT_S (a third "
                             "of it is usual): a member that heartbeats less often is dropped from its group")


class MongoSettings(msgspec.Struct, frozen=True, kw_only=True):
    uri: str | None = None
    """A real MongoDB replica set; unset means the embedded server on ``ports.mongo``."""
    max_pool_size: int = 8
    """Small on purpose: the embedded server loses throughput with concurrency."""
    server_selection_timeout_ms: int = 3000
    server_monitoring_mode: Literal["poll", "stream", "auto"] = "poll"
    """How each client watches the server. ``stream`` keeps one awaiting ``hello`` open per client plus a second
    connection timing round trips; both wake client and server every half second (the embedded server polls
    each streaming ``hello`` four times a second), and with some twenty clients that was a large share of an idle
    system. ``poll`` asks once per heartbeat (10 s), which is all a single node or a small replica set needs: a
    driver that meets a stepped-down primary re-checks at once either way."""
    db_prefix: str = "kagi"


class SmtpSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = None
    """``smtp://user:pass@host:port?starttls=1``; unset means the embedded sink."""
    sender: str = "no-reply@kagi.example.jp"
    auth_sender: str = "noreply@admin.auth.kagi.example.jp"
    """From of the authentication system's notices (seed 5-7: the inactivity mails); templates say ``sender: auth``."""
    enrolment_sender: str = "anshinlogin@auth.kagi.example.jp"
    """From of the authentication provider's enrolment mails (seed 5-1 ⑤: guide and one-time password);
    templates say ``sender: enrolment``. Any ``<key>_sender`` field here is a sender templates may name."""


class OutboxSettings(msgspec.Struct, frozen=True, kw_only=True):
    batch_size: int = 500
    poll_interval_s: float = 0.02
    """The first poll after an empty pass; each further empty pass doubles it up to ``idle_poll_max_s``."""
    idle_poll_max_s: float = 2.0
    """The longest a relay without a change stream sleeps between polls. With the stream (MongoDB replica sets,
    the embedded database) every commit wakes the relay and a poll every ``safety_poll_s`` is only a safety net."""
    watch_await_s: float = 5.0
    """How long one getMore of the outbox's change stream waits at the server for an insert."""
    safety_poll_s: float = 30.0
    """With the change stream open, the outbox is still read this often, for an insert the stream did not report."""
    lease_ttl_s: float = 10.0
    change_stream: bool = True
    """Publish by tailing the outbox's change stream (no query per row; the resume token is the checkpoint) when
    the database has one; off, or on a database without change streams, the relay polls the outbox."""
    stream_retry_s: float = 60.0
    """While polling because the change stream could not be opened, how often to try opening it again."""
    cleanup_rows: int = 5000
    """A tailing relay deletes the rows it published once the stream is quiet, or after this many."""
    cleanup_every_s: float = 5.0
    """A tailing relay cleans up when the stream is quiet at most this often: under a steady trickle of events
    (a quiet moment after nearly every one) one clean-up then serves many events."""


class ConsumerSettings(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int = 3
    """Attempts before a message goes to ``<topic>.dlt``."""
    retry_backoff_s: float = 0.2
    liveness_silence_s: float = 60.0
    """A worker whose event loop has not beaten for this long answers ``/health`` with 503 (pod restarted)."""


class NotifySettings(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int = 6
    """Attempts the server refuses a message for now (4xx for its recipient) before it is dead-lettered; a server
    that is down spends none (see ``outage_retry_cap_s``)."""
    retry_base_s: float = 2.0
    outage_retry_cap_s: float = 60.0
    """While the SMTP server is unreachable (refused, timed out, 421) mail waits without spending attempts and
    the server is tried again after ``retry_base_s``, doubling up to this: at most this late once it is back."""
    dispatch_poll_s: float = 1.0
    """How often the dispatcher looks for due deliveries when the database has no change stream to wake it."""
    dispatch_idle_max_s: float = 30.0
    """With the change stream, the longest an idle dispatcher sleeps (new deliveries and due retries wake it)."""
    smtp_timeout_s: float = 10.0
    sms_sender: Literal["file"] = "file"
    """Where SMS go: ``file`` writes each as a JSON file under ``sms_dir`` (a real SMS gateway plugs in here)."""
    sms_dir: str = ""
    """Unset: ``<var_dir>/sms``."""
    admin_link_ttl_days: int = 7
    """How long an admin contact's confirmation link is valid (seed 7-3: 7 days)."""
    dispatch_concurrency: int = 8
    """Deliveries sent at the same time by one dispatcher (each is claimed first, so never twice)."""


class SecuritySettings(msgspec.Struct, frozen=True, kw_only=True):
    jwt_secret: str = DEV_SECRETS["jwt_secret"]
    jwt_previous_secrets: str = ""
    """Comma-separated signing keys of before a rotation: tokens they signed (named by ``kid``) are still
    accepted. Keep the old key here for ``access_token_ttl_s`` after putting the new one in ``jwt_secret``."""
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 8 * 3600
    refresh_absolute_ttl_s: int = 24 * 3600
    """A login's refresh token family ends this long after the login, however often it was rotated."""
    code_pepper: str = DEV_SECRETS["code_pepper"]
    """Key of the HMAC under which one-time codes and keys are stored."""
    internal_token: str = DEV_SECRETS["internal_token"]
    """The credential this service's internal API accepts from the gateway (one per service in production)."""
    internal_token_lifecycle: str = ""
    internal_token_invite: str = ""
    internal_token_permissions: str = ""
    internal_token_notify: str = ""
    internal_token_audit: str = ""
    """The gateway's credential for each service's internal API; empty: ``internal_token`` (dev, test)."""
    audit_key: str = DEV_SECRETS["audit_key"]
    """Key of the audit chain's HMAC and of its checkpoints; lives outside the database (audit only)."""
    notify_key: str = DEV_SECRETS["notify_key"]
    """Key that seals the variables of every mail and SMS request on ``notify.requests`` (codes, reset links):
    held by the services that ask for mail and by notify, by nobody else (not the gateway, not audit)."""
    login_lockout_threshold: int = 5
    totp_roles: str = "operator,support,company_admin"
    """Roles that log in with a TOTP second factor (RFC 6238) besides the password; empty: none. On by default
    everywhere (the demo seed and the test helpers enrol like a person would), so no install forgets it."""
    privileged_lock_s: int = 900
    """A failed-login lock of an account with one of ``totp_roles`` ends by itself after this long (0: only an
    operator or ``kagi accounts unlock`` ends it), so nobody can lock every operator out for good."""
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    """OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane). RFC 9106's 64 MiB × 3 × 4 lanes cost ~5× the CPU per
    login for no gain an online attacker notices (rate limits and the 5-failure lock bound guessing) and left a
    2-core pod at ~2 logins/s. Stored hashes carry their parameters: older ones still verify and are re-hashed
    with these at the next successful login."""
    argon2_concurrency: int = 0
    """Password hashes computed at once per process, the rest wait in line (first come, first served);
    0 = the process's cores ÷ ``argon2_parallelism``, at least 1. A hash already keeps that many cores busy,
    so running more at once only shares the same cores: every hash then finishes as late as the last one
    and the process's event loop starves."""
    argon2_max_wait_s: float = 4.0
    """Longest a hash waits for a slot; past it the request gets 503 ``service.busy``. Below the gateway's
    service timeout, so no hash (nor the account it would create) is computed for a caller already gone."""
    step_up_code_ttl_s: int = 600
    step_up_max_attempts: int = 5
    step_up_valid_s: int = 900


class InviteSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Invitation keys, confirmation links and their abuse limits (SPEC §2)."""

    key_ttl_s: int = 3600
    key_max_attempts: int = 5
    """Failed redemptions of one key (wrong login on redemption) before it is voided."""
    link_ttl_s: int = 86400
    link_max_wrong_keys: int = 5
    """Wrong keys entered through one confirmation link before the link is voided."""
    reservation_ttl_s: int = 120
    """How long a redemption in progress holds a key; an abandoned one frees it again."""
    viewer_key_ttl_s: int = 86400
    rate_window_s: int = 600
    request_per_ip: int = 20
    request_per_email: int = 5
    redeem_per_ip: int = 30
    redeem_per_email: int = 10
    claim_per_account: int = 10
    """Contract-claim attempts per account in the rate window (each wrong proof counts)."""
    claim_failures_per_contract: int = 5
    """Failed proofs against one customer number in the rate window, from any account: the facts are guessable."""
    claim_failures_per_ip: int = 20
    """Failed proofs from one client address in the rate window, whatever the account or number."""
    claim_recommended_max: int = 20
    """Above this many linked customer numbers the answer carries a warning (the FAQ recommends ~20)."""
    sms_code_ttl_s: int = 600
    """SMS verification code of the water registration: valid 10 minutes, re-issue replaces it."""
    sms_max_attempts: int = 5


class LifecycleSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Account lifecycle (SPEC §4): inactivity ladder, password policy, resets, session checks."""

    sweep_cron: str = "0 7 * * *"
    """When the inactivity sweep runs (crontab, in ``sweep_timezone``)."""
    sweep_timezone: str = "Asia/Tokyo"
    warning1_days: int = 120
    warning2_days: int = 150
    lock_days: int = 180
    purge_days: int = 210
    password_profile: Literal["seed", "nist"] = "seed"  # noqa: S105 - a profile name
    password_max_age_days: int = 185
    """Expiry of a password under the ``seed`` profile (``nist`` has none)."""
    reset_link_ttl_s: int = 1800
    reset_rate_window_s: int = 3600
    reset_per_ip: int = 20
    reset_per_login_id: int = 5
    registration_link_ttl_s: int = 86400
    """Self-registration (water portal): how long the mailed email-verification link is valid; single use."""
    enrolment_ttl_s: int = 14 * 86400
    """認証情報登録 (B2B IDs): how long the mailed URL and one-time password are valid; single use."""
    enrolment_max_otp_failures: int = 5
    """Wrong one-time passwords after which the URL and the password are void (a re-issue is needed)."""
    registration_rate_window_s: int = 3600
    registration_per_ip: int = 20
    registration_per_email: int = 5
    """Registration mails per address in the window, whether or not the address has an account."""
    session_cache_ttl_s: float = 5.0
    """How long the gateway trusts its cached session version of an account (at most 5 s)."""
    support_contact: str = "Kagi サポート窓口 (平日 09:00〜18:00、土日祝及び12/31〜1/3は除く)"
    """Contact line printed in lifecycle notices."""


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    service_timeout_s: float = 5.0
    chained_service_timeout_s: float = 15.0
    """The gateway's wait for a route that itself calls another service before answering (an invitation's
    redemption: invite → lifecycle, which hashes the new password). It covers that inner call's whole
    ``service_timeout_s`` and the outer service's own work, so the gateway never answers 504 for a redemption the
    services then complete (seen in a drill under load: lifecycle 1.0 s, invite 5.08 s, the gateway gone at 5.0 s)."""
    max_body_bytes: int = 64 * 1024
    server_keep_alive_s: int = 75
    """How long a server keeps an idle connection; longer than any client's pool keeps one (client_keep_alive_s),
    so a client never sends on a connection the server is closing at the same moment."""
    client_keep_alive_s: float = 30.0
    metrics_refresh_s: float = 15.0
    """State gauges (accounts per status, requests per state) are recomputed from the database at most this
    often, when Prometheus scrapes ``/metrics``."""

    def __post_init__(self) -> None:
        if self.chained_service_timeout_s < self.service_timeout_s:
            raise ValueError("KAGI_HTTP_CHAINED_SERVICE_TIMEOUT_S must be at least KAGI_HTTP_SERVICE_TIMEOUT_S "
                             "(a chained route waits for another service's whole timeout)")


class EdgeSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The gateway's edge: who the client is, where from, and how often it may ask."""

    trusted_proxies: str = ""
    """Comma-separated CIDRs whose X-Forwarded-For is believed (the load balancer); empty: none."""
    geo_enabled: bool = True
    allowed_countries: str = "JP"
    """Comma-separated ISO codes allowed in; private and loopback addresses are always allowed."""
    rate_window_s: float = 60.0
    rate_login_per_ip: int = 30
    login_failures_per_ip: int = 20
    """Failed logins (any IDs) one address may have in ``login_failure_window_s``; then its logins wait. One ID
    locks after 5 failures, so more than this from one address is someone trying many IDs."""
    login_failure_window_s: float = 900.0
    rate_guess_per_ip: int = 20
    rate_guess_per_account: int = 10
    rate_default_per_ip: int = 1200
    rate_default_per_account: int = 600
    ip_allowlist_cache_s: float = 60.0

    def __post_init__(self) -> None:
        try:
            self.trusted_networks()
        except ValueError as exc:
            raise ValueError(f"KAGI_EDGE_TRUSTED_PROXIES: {exc}") from None

    def trusted_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(part.strip(), strict=False) for part in self.trusted_proxies.split(",")
                if part.strip()]


class TracingSettings(msgspec.Struct, frozen=True, kw_only=True):
    otlp_endpoint: str | None = None
    """OTLP/HTTP traces endpoint (``http://otel-collector:4318/v1/traces``); unset: spans are not exported."""


class FederationSettings(msgspec.Struct, frozen=True, kw_only=True):
    """External identity providers people may log in with (SNS連携: LINE, Yahoo! JAPAN, Apple, Facebook…)."""

    providers: str = ""
    """A JSON list, one object per provider: ``id`` (``line``), ``displayName`` (``LINEでログイン``), ``issuer``
    (its discovery document is ``<issuer>/.well-known/openid-configuration``), ``clientId``, ``clientSecret`` and
    ``scopes`` (default ``openid``). It holds client secrets: keep it in the secret store
    (``KAGI_SECRETS_DIR/KAGI_FEDERATION_PROVIDERS``), not in a manifest."""


class BrandSettings(msgspec.Struct, frozen=True, kw_only=True):
    name: str = "Kagi マイページ"
    portal_url: str = "http://127.0.0.1:8000"


_ISO_DATES = r"^\s*(\d{4}-\d{2}-\d{2}\s*(,\s*\d{4}-\d{2}-\d{2}\s*)*)?,?\s*$"


class PermissionsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Permission provisioning: business calendar, request rules, routing SLA."""

    business_calendar_closed_dates: Annotated[str, msgspec.Meta(pattern=_ISO_DATES)] = ""
    """Extra company closure days, comma-separated ISO dates (also ``BUSINESS_CALENDAR_CLOSED_DATES``)."""
    reserved_ids: str = ""
    """IDs used by a sister system, comma-separated; refused case-insensitively for new users."""
    juju_max_users: int = 5
    """JUJU users per company unless the operator raises the company's own limit."""
    ack_sla_s: int = 86400
    """A grant command without an ack after this long raises a reminder."""
    scheduler_interval_s: float = 60.0
    """How often the worker runs due batches and looks for overdue acks."""

    def __post_init__(self) -> None:
        for part in self.business_calendar_closed_dates.split(","):
            if part.strip():
                try:
                    date.fromisoformat(part.strip())
                except ValueError:
                    raise ValueError(f"BUSINESS_CALENDAR_CLOSED_DATES: {part.strip()!r} is not a date") from None

    def closed_dates(self) -> frozenset[date]:
        return frozenset(date.fromisoformat(p.strip()) for p in self.business_calendar_closed_dates.split(",")
                         if p.strip())

    def reserved_id_set(self) -> frozenset[str]:
        return frozenset(p.strip().lower() for p in self.reserved_ids.split(",") if p.strip())


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    env: Literal["dev", "test", "prod"] = "dev"
    var_dir: str = "var"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    topology: Literal["split", "compact"] = "split"
    """``split``: one process per service API (what Kubernetes runs). ``compact``: one process (``kagi-apis``)
    serves all five internal APIs, each under ``/<service>``, for a laptop or a small installation; the
    workers stay one process per service either way."""
    ports: Ports = Ports()
    kafka: KafkaSettings = KafkaSettings()
    mongo: MongoSettings = MongoSettings()
    smtp: SmtpSettings = SmtpSettings()
    outbox: OutboxSettings = OutboxSettings()
    consumer: ConsumerSettings = ConsumerSettings()
    notify: NotifySettings = NotifySettings()
    security: SecuritySettings = SecuritySettings()
    http: HttpSettings = HttpSettings()
    edge: EdgeSettings = EdgeSettings()
    tracing: TracingSettings = TracingSettings()
    brand: BrandSettings = BrandSettings()
    federation: FederationSettings = FederationSettings()
    permissions: PermissionsSettings = PermissionsSettings()
    invite: InviteSettings = InviteSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir)

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka.bootstrap_servers or f"127.0.0.1:{self.ports.kafka}"

    @property
    def mongo_uri(self) -> str:
        return self.mongo.uri or f"mongodb://127.0.0.1:{self.ports.mongo}/?directConnection=true"

    @property
    def smtp_url(self) -> str:
        return self.smtp.url or f"smtp://127.0.0.1:{self.ports.smtp}"

    def internal_token_for(self, service: str) -> str:
        """What the gateway sends to ``service``: its own credential, or the shared one in dev and test."""
        return str(getattr(self.security, f"internal_token_{service}", "")) or self.security.internal_token

    def service_url(self, service: str) -> str:
        explicit = os.environ.get(f"KAGI_{service.upper()}_URL")
        if explicit:
            return explicit
        if self.topology == "compact":  # the one process mounts each service's routes under its name
            return f"http://{self.http.host}:{self.ports.compact}/{service}"
        return f"http://{self.http.host}:{getattr(self.ports, service)}"


# Variables with a well-known name outside the KAGI_ prefix.
_ALIASES = {
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap_servers"),
    "MONGODB_URI": ("mongo", "uri"),
    "SMTP_URL": ("smtp", "url"),
    "BUSINESS_CALENDAR_CLOSED_DATES": ("permissions", "business_calendar_closed_dates"),
}


def _env_path(struct: type[msgspec.Struct], prefix: str) -> dict[str, tuple[str, ...]]:
    """Map every leaf field to its variable name: ``kafka.default_partitions`` → ``KAGI_KAFKA_DEFAULT_PARTITIONS``."""
    out: dict[str, tuple[str, ...]] = {}
    for field in msgspec.structs.fields(struct):
        name = f"{prefix}_{field.name.upper()}"
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            for var, path in _env_path(field.type, name).items():
                out[var] = (field.name, *path)
        else:
            out[name] = (field.name,)
    return out


def _secret_files(directory: str | None, variables: Mapping[str, object]) -> dict[str, str]:
    """Settings from files named like their variable (a Kubernetes Secret mounted as a volume).

    A secret in a file never shows in the process environment (``/proc/<pid>/environ``, crash dumps, child
    processes); the environment still wins, so a developer can override one value.
    """
    if not directory:
        return {}
    root = Path(directory)
    if not root.is_dir():
        raise SettingsError(f"KAGI_SECRETS_DIR={directory!r}: not a directory")
    found = {}
    for path in sorted(root.iterdir()):
        if path.name in variables and path.is_file():
            found[path.name] = path.read_text(encoding="utf-8").strip()
    return found


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    variables = {**_env_path(Settings, "KAGI"), **_ALIASES}
    environ = {**_secret_files(environ.get("KAGI_SECRETS_DIR"), variables), **environ}
    tree: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    for var, path in variables.items():
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = raw
        sources[path] = var
    try:
        settings = msgspec.convert(tree, Settings, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec names the failing path as `$.kafka.default_partitions`; turn it back into the variable.
        message = str(exc)
        for path, var in sources.items():
            if "$." + ".".join(path) in message:
                raise SettingsError(f"{var}={environ[var]!r}: {message.split(' - at ')[0]}") from None
        raise SettingsError(message) from None
    if settings.env == "prod":
        settings = _production(settings, {path[-1] for path in sources if path[0] == "security"})
    return settings


def _decoded(value: str) -> bytes | None:
    """The bytes behind a hex or base64 (standard or URL-safe, padded or not) secret; None if it is neither."""
    text = value.strip()
    if len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text)
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def secret_problem(value: str) -> str | None:
    """Why ``value`` is not a production secret (a placeholder, too short, not random), or None."""
    lowered = value.lower()
    if value in DEV_SECRETS.values() or any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return "is a placeholder"
    raw = _decoded(value)
    if raw is None or len(raw) < SECRET_MIN_BYTES:
        return f"must be at least {SECRET_MIN_BYTES} random bytes, hex or base64 encoded (`make k8s-secrets`)"
    if len(set(raw)) < SECRET_MIN_BYTES // 2:
        return "is not random (too few distinct bytes)"
    return None


def _production(settings: Settings, given: set[str]) -> Settings:
    """Secrets held by this process are strong and one per purpose; the ones left at a default are not held."""
    held: dict[str, str] = {}
    cleared: dict[str, str] = {}
    for field in DEV_SECRETS:
        value = getattr(settings.security, field)
        if field not in given:
            cleared[field] = ""
            continue
        problem = secret_problem(value)
        if problem:
            raise SettingsError(f"KAGI_SECURITY_{field.upper()} {problem} (KAGI_ENV=prod)")
        held[field] = value
    for previous in (p.strip() for p in settings.security.jwt_previous_secrets.split(",") if p.strip()):
        if problem := secret_problem(previous):  # a key still accepted must be as strong as the current one
            raise SettingsError(f"KAGI_SECURITY_JWT_PREVIOUS_SECRETS: an entry {problem} (KAGI_ENV=prod)")
    shared = [field for field in held if field.startswith("internal_token")]
    for field, value in held.items():
        twins = [other for other, v in held.items() if other != field and v == value
                 and not (field in shared and other in shared)]
        if twins:
            raise SettingsError(f"KAGI_SECURITY_{field.upper()} is also KAGI_SECURITY_{twins[0].upper()}: "
                                "one secret per purpose (KAGI_ENV=prod)")
    tokens = [held[f"internal_token_{name}"] for name in SERVICE_NAMES if f"internal_token_{name}" in held]
    if len(tokens) != len(set(tokens)):
        raise SettingsError("KAGI_SECURITY_INTERNAL_TOKEN_<SERVICE>: one credential per service (KAGI_ENV=prod)")
    return msgspec.structs.replace(settings, security=msgspec.structs.replace(settings.security, **cleared))


# What each process needs to start in production; anything else it is not given.
PROCESS_NEEDS: dict[str, tuple[str, ...]] = {
    "gateway": ("jwt_secret", *(f"internal_token_{name}" for name in SERVICE_NAMES), "edge.trusted_proxies"),
    "lifecycle": ("internal_token", "code_pepper", "notify_key"),
    # invite's API calls lifecycle's (the invitee's redemption, the user list) with lifecycle's credential.
    "invite": ("internal_token", "code_pepper", "notify_key", "internal_token_lifecycle"),
    "permissions": ("internal_token", "notify_key"),
    "notify": ("internal_token", "code_pepper", "notify_key"),
    "audit": ("internal_token", "audit_key"),
}
# The compact process hosts every API: it needs what each needs, and checks each service's own credential.
PROCESS_NEEDS["compact"] = tuple(dict.fromkeys(
    [need for name in SERVICE_NAMES for need in PROCESS_NEEDS[name]]
    + [f"internal_token_{name}" for name in SERVICE_NAMES]))


def require_secrets(settings: Settings, process: str) -> None:
    """Refuse to start in production without what ``process`` needs: ``gateway``, ``<service>-api`` or
    ``<service>-worker`` (a worker serves and calls no internal API, so it holds no internal credential)."""
    if settings.env != "prod":
        return
    service, _, kind = process.partition("-")
    needs = [n for n in PROCESS_NEEDS[service] if not (kind == "worker" and n.startswith("internal_token"))]
    for need in needs:
        section, _, field = need.rpartition(".")
        value = getattr(getattr(settings, section or "security"), field)
        if not value:
            raise SettingsError(f"KAGI_{(section or 'security').upper()}_{field.upper()} must be set for "
                                f"{process} in production (KAGI_ENV=prod)")


@functools.cache
def get_settings() -> Settings:
    return load_settings()
