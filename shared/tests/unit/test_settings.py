"""Settings come from the environment; a bad value names its variable and the reason."""

from __future__ import annotations

import pytest

from kagi_shared.settings import SettingsError, load_settings


def test_defaults_run_the_embedded_setup_on_loopback() -> None:
    settings = load_settings({})
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.mongo_uri.startswith("mongodb://127.0.0.1:27117")
    assert settings.smtp_url == "smtp://127.0.0.1:2525"
    assert settings.kafka.enable_idempotence is False


def test_real_servers_are_selected_by_their_usual_variables() -> None:
    settings = load_settings({
        "KAFKA_BOOTSTRAP_SERVERS": "kafka-0:9092,kafka-1:9092",
        "MONGODB_URI": "mongodb://db/?replicaSet=rs0",
        "SMTP_URL": "smtp://relay:587?starttls=1",
        "KAGI_KAFKA_ENABLE_IDEMPOTENCE": "true",
    })
    assert settings.kafka_bootstrap == "kafka-0:9092,kafka-1:9092"
    assert settings.mongo_uri == "mongodb://db/?replicaSet=rs0"
    assert settings.smtp_url == "smtp://relay:587?starttls=1"
    assert settings.kafka.enable_idempotence is True


def test_nested_values_are_typed() -> None:
    settings = load_settings({"KAGI_PORTS_GATEWAY": "9000", "KAGI_OUTBOX_POLL_INTERVAL_S": "0.5"})
    assert settings.ports.gateway == 9000
    assert settings.outbox.poll_interval_s == 0.5


@pytest.mark.parametrize(
    ("var", "value", "reason"),
    [
        ("KAGI_PORTS_KAFKA", "ninety", "Expected `int`"),
        ("KAGI_KAFKA_ENABLE_IDEMPOTENCE", "maybe", "Expected `bool`"),
        ("KAGI_LOG_LEVEL", "LOUD", "Invalid enum value 'LOUD'"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({var: value})
    message = str(caught.value)
    assert message.startswith(f"{var}={value!r}")
    assert reason in message


def test_production_refuses_the_development_secrets() -> None:
    with pytest.raises(SettingsError, match="KAGI_SECURITY_JWT_SECRET must be set in production"):
        load_settings({"KAGI_ENV": "prod"})
    settings = load_settings({
        "KAGI_ENV": "prod",
        "KAGI_SECURITY_JWT_SECRET": "a" * 40,
        "KAGI_SECURITY_CODE_PEPPER": "b" * 40,
        "KAGI_SECURITY_INTERNAL_TOKEN": "c" * 40,
    })
    assert settings.env == "prod"


def test_kafka_tls_builds_an_ssl_context_for_every_client() -> None:
    from kagi_shared.kafka import security

    assert security(load_settings({})) == {}
    tls = security(load_settings({"KAGI_KAFKA_SECURITY_PROTOCOL": "SSL",
                                  "KAGI_KAFKA_SSL_CAFILE": "/etc/ssl/certs/ca-certificates.crt"}))
    assert tls["security_protocol"] == "SSL"
    assert tls["ssl_context"].verify_mode.name == "CERT_REQUIRED"
    with pytest.raises(SettingsError, match="KAGI_KAFKA_SECURITY_PROTOCOL='SASL'"):
        load_settings({"KAGI_KAFKA_SECURITY_PROTOCOL": "SASL"})


async def test_the_idempotence_setting_reaches_the_relays_producer() -> None:
    """Against real Kafka the producer must be idempotent (no duplicates on retried sends); the embedded broker
    refuses InitProducerId, so it stays off there. aiokafka keeps a transaction manager only when it is on."""
    from kagi_shared.kafka import make_producer

    real = make_producer(load_settings({"KAGI_KAFKA_ENABLE_IDEMPOTENCE": "true"}), "t")
    embedded = make_producer(load_settings({}), "t")
    try:
        assert real._txn_manager is not None
        assert embedded._txn_manager is None
    finally:
        await real.stop()
        await embedded.stop()
