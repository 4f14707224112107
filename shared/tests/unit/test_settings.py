"""Settings come from the environment; a bad value names its variable and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from kagi_shared.settings import SettingsError, load_settings, require_secrets


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
        ("KAGI_KAFKA_FETCH_RECHECK_MS", "0", "Expected `int` >= 1"),
        ("KAGI_MONGO_SERVER_MONITORING_MODE", "sometimes", "Invalid enum value 'sometimes'"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({var: value})
    message = str(caught.value)
    assert message.startswith(f"{var}={value!r}")
    assert reason in message


def test_a_heartbeat_as_long_as_the_session_is_refused() -> None:
    with pytest.raises(SettingsError, match="KAGI_KAFKA_HEARTBEAT_INTERVAL_S must be below"):
        load_settings({"KAGI_KAFKA_HEARTBEAT_INTERVAL_S": "6", "KAGI_KAFKA_SESSION_TIMEOUT_S": "6"})
    assert load_settings({"KAGI_KAFKA_HEARTBEAT_INTERVAL_S": "3"}).kafka.heartbeat_interval_s == 3.0


def _strong() -> str:
    import secrets

    return secrets.token_urlsafe(32)


PLACEHOLDERS = ["change-me", "dev-only-change-me-dev-only-change-me", "a" * 64, "0123456789abcdef" * 4,
                "my-very-long-production-secret-value-2026!", "c2VjcmV0" * 8, "short"]


def test_production_refuses_placeholder_and_weak_secrets() -> None:
    for placeholder in PLACEHOLDERS:
        for var in ("KAGI_SECURITY_JWT_SECRET", "KAGI_SECURITY_CODE_PEPPER", "KAGI_SECURITY_INTERNAL_TOKEN",
                    "KAGI_SECURITY_AUDIT_KEY", "KAGI_SECURITY_INTERNAL_TOKEN_AUDIT", "KAGI_SECURITY_NOTIFY_KEY"):
            with pytest.raises(SettingsError, match=var):
                load_settings({"KAGI_ENV": "prod", var: placeholder})
    # Hex and standard base64 of 32 random bytes are accepted as well as URL-safe base64.
    import base64
    import os

    with pytest.raises(SettingsError, match="KAGI_SECURITY_JWT_PREVIOUS_SECRETS"):
        load_settings({"KAGI_ENV": "prod", "KAGI_SECURITY_JWT_PREVIOUS_SECRETS": f"{_strong()},change-me"})
    for value in (os.urandom(32).hex(), base64.b64encode(os.urandom(32)).decode(), _strong()):
        assert load_settings({"KAGI_ENV": "prod", "KAGI_SECURITY_JWT_SECRET": value}).security.jwt_secret == value


def test_production_wants_one_secret_per_purpose() -> None:
    same = _strong()
    with pytest.raises(SettingsError, match="one secret per purpose"):
        load_settings({"KAGI_ENV": "prod", "KAGI_SECURITY_JWT_SECRET": same, "KAGI_SECURITY_CODE_PEPPER": same})
    with pytest.raises(SettingsError, match="one credential per service"):
        load_settings({"KAGI_ENV": "prod", "KAGI_SECURITY_INTERNAL_TOKEN_LIFECYCLE": same,
                       "KAGI_SECURITY_INTERNAL_TOKEN_INVITE": same})
    with pytest.raises(SettingsError, match="one secret per purpose"):
        load_settings({"KAGI_ENV": "prod", "KAGI_SECURITY_JWT_SECRET": same,
                       "KAGI_SECURITY_INTERNAL_TOKEN_INVITE": same})
    # The gateway's credential for a service is that service's own internal_token: the same value, by design.
    assert load_settings({"KAGI_ENV": "prod", "KAGI_SECURITY_INTERNAL_TOKEN": same,
                          "KAGI_SECURITY_INTERNAL_TOKEN_INVITE": same}).internal_token_for("invite") == same


def test_production_does_not_hold_the_development_defaults() -> None:
    """A secret not given is not held (never the public dev value), and the process needing it will not start."""
    settings = load_settings({"KAGI_ENV": "prod"})
    assert settings.security.jwt_secret == settings.security.code_pepper == settings.security.internal_token == ""
    for process, missing in (("gateway", "KAGI_SECURITY_JWT_SECRET"),
                             ("lifecycle-api", "KAGI_SECURITY_INTERNAL_TOKEN"),
                             ("invite-worker", "KAGI_SECURITY_CODE_PEPPER"),
                             ("audit-worker", "KAGI_SECURITY_AUDIT_KEY"),
                             ("permissions-worker", "KAGI_SECURITY_NOTIFY_KEY")):  # it asks for mail
        with pytest.raises(SettingsError, match=missing):
            require_secrets(settings, process)
    strong = "q8Xb2kP0vT7mN4rW9zL1cY6hJ3dF5gS8aE0uI2oK7nM"
    require_secrets(load_settings({"KAGI_ENV": "prod", "KAGI_SECURITY_NOTIFY_KEY": strong}),
                    "permissions-worker")  # needs nothing else
    require_secrets(load_settings({}), "gateway")  # dev and test keep their defaults


def test_production_gateway_needs_its_trusted_proxies() -> None:
    """Behind an ingress, without the proxies' CIDR every client would be the ingress pod: domestic, one window."""
    import secrets

    env = {"KAGI_ENV": "prod", "KAGI_SECURITY_JWT_SECRET": _strong(),
           **{f"KAGI_SECURITY_INTERNAL_TOKEN_{s.upper()}": secrets.token_hex(32)
              for s in ("lifecycle", "invite", "permissions", "notify", "audit")}}
    with pytest.raises(SettingsError, match="KAGI_EDGE_TRUSTED_PROXIES"):
        require_secrets(load_settings(env), "gateway")
    require_secrets(load_settings({**env, "KAGI_EDGE_TRUSTED_PROXIES": "10.0.0.0/8"}), "gateway")
    with pytest.raises(SettingsError, match="KAGI_EDGE_TRUSTED_PROXIES"):
        load_settings({**env, "KAGI_EDGE_TRUSTED_PROXIES": "10.0.0.0/33"})


def test_secrets_come_from_files_named_like_their_variable(tmp_path: Path) -> None:
    value = _strong()
    (tmp_path / "KAGI_SECURITY_JWT_SECRET").write_text(value + "\n")
    (tmp_path / "..data").mkdir()  # what a Kubernetes Secret volume also holds
    settings = load_settings({"KAGI_ENV": "prod", "KAGI_SECRETS_DIR": str(tmp_path)})
    assert settings.security.jwt_secret == value
    (tmp_path / "KAGI_SECURITY_CODE_PEPPER").write_text("change-me")
    with pytest.raises(SettingsError, match="KAGI_SECURITY_CODE_PEPPER is a placeholder"):
        load_settings({"KAGI_ENV": "prod", "KAGI_SECRETS_DIR": str(tmp_path)})
    with pytest.raises(SettingsError, match="KAGI_SECRETS_DIR"):
        load_settings({"KAGI_SECRETS_DIR": str(tmp_path / "missing")})


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


def test_compact_topology_points_every_service_at_the_one_process_under_its_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAGI_LIFECYCLE_URL", raising=False)
    split = load_settings({})
    assert split.topology == "split" and split.service_url("lifecycle") == "http://127.0.0.1:8101"
    compact = load_settings({"KAGI_TOPOLOGY": "compact", "KAGI_PORTS_COMPACT": "8200"})
    assert compact.service_url("lifecycle") == "http://127.0.0.1:8200/lifecycle"
    assert compact.service_url("audit") == "http://127.0.0.1:8200/audit"
    monkeypatch.setenv("KAGI_LIFECYCLE_URL", "http://lifecycle.kagi:8101")  # an explicit address still wins
    assert compact.service_url("lifecycle") == "http://lifecycle.kagi:8101"
    with pytest.raises(SettingsError, match="KAGI_TOPOLOGY"):
        load_settings({"KAGI_TOPOLOGY": "monolith"})


def test_production_compact_process_needs_every_services_secrets_and_credentials() -> None:
    import secrets

    env = {"KAGI_ENV": "prod", **{f"KAGI_SECURITY_{name}": secrets.token_hex(32) for name in (
        "INTERNAL_TOKEN", "CODE_PEPPER", "NOTIFY_KEY", "AUDIT_KEY",
        *(f"INTERNAL_TOKEN_{s}" for s in ("LIFECYCLE", "INVITE", "PERMISSIONS", "NOTIFY")))}}
    with pytest.raises(SettingsError, match="KAGI_SECURITY_INTERNAL_TOKEN_AUDIT"):
        require_secrets(load_settings(env), "compact-api")
    require_secrets(load_settings({**env, "KAGI_SECURITY_INTERNAL_TOKEN_AUDIT": secrets.token_hex(32)}),
                    "compact-api")
