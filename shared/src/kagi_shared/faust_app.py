"""The faust app factory: raw bytes in and out (msgspec decodes), fast group joins on the embedded broker."""

from __future__ import annotations

import faust
from faust.sensors import Monitor
from mode import Service

from kagi_shared.kafka import security
from kagi_shared.settings import Settings


class QuietMonitor(Monitor):
    """faust's statistics sensor without its once-a-second sampler. The rates it samples feed only faust's web
    views, which Kagi turns off (``web_enabled=False``; Kagi's metrics are its own Prometheus counters), and the
    sampler was one of the timers that woke every idle worker."""

    @Service.task
    async def _sampler(self) -> None:
        return None


def make_faust_app(service: str, settings: Settings) -> faust.App:
    brokers = [f"kagi://{hostport}" for hostport in settings.kafka_bootstrap.split(",")]
    app = faust.App(
        f"kagi-{service}",
        broker=brokers,
        key_serializer="raw",
        value_serializer="raw",
        # The embedded broker holds a join until the session timeout; short timeouts make
        # a worker ready in ~3 s instead of ~30 s. Real Kafka is fine with these too.
        broker_rebalance_timeout=settings.kafka.rebalance_timeout_s,
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.kafka.default_partitions,
        producer_acks=-1,
        web_enabled=False,
        Monitor=QuietMonitor,
        store="memory://",
        autodiscover=False,
        datadir=str(settings.var_path / "faust" / service),
    )
    tls = security(settings)
    if tls:
        app.conf.broker_credentials = faust.SSLCredentials(tls["ssl_context"])
    app.conf.kagi_settings = settings
    return app
