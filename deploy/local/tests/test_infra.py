"""The embedded infrastructure: which servers are embedded, and `up` never leaves a half-started set behind."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from kagi_local.infra import Infra, infra_specs
from kagi_local.processes import ProcessError, ProcessSpec, ProcessStatus
from kagi_shared.settings import load_settings

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.mark.parametrize(("variable", "value", "embedded"), [
    (None, None, ["broker", "mongo", "smtp"]),
    ("KAFKA_BOOTSTRAP_SERVERS", "kafka-0.kafka:9092,kafka-1.kafka:9092", ["mongo", "smtp"]),
    ("MONGODB_URI", "mongodb://db-0.db:27017/?replicaSet=rs0", ["broker", "smtp"]),
    ("SMTP_URL", "smtp://relay.example.jp:587?starttls=1", ["broker", "mongo"]),
])
def test_a_real_server_in_the_settings_is_not_embedded(variable: str | None, value: str | None,
                                                       embedded: list[str], tmp_path: Path) -> None:
    environ = {"KAGI_VAR_DIR": str(tmp_path)} | ({variable: value} if variable and value else {})
    assert [spec.name for spec in infra_specs(load_settings(environ))] == embedded


def test_all_three_real_servers_leave_nothing_to_start(tmp_path: Path) -> None:
    settings = load_settings({"KAGI_VAR_DIR": str(tmp_path), "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
                              "MONGODB_URI": "mongodb://db:27017", "SMTP_URL": "smtp://relay:25"})
    assert infra_specs(settings) == []
    assert Infra(settings).up() == []


def test_compact_topology_starts_one_api_process_for_every_service(tmp_path: Path) -> None:
    from kagi_local.infra import service_specs

    split = [spec.name for spec in service_specs(load_settings({"KAGI_VAR_DIR": str(tmp_path)}))]
    compact = service_specs(load_settings({"KAGI_VAR_DIR": str(tmp_path), "KAGI_TOPOLOGY": "compact",
                                           "KAGI_PORTS_COMPACT": "8200"}))
    assert [name for name in split if name.endswith("-api")] == [
        "lifecycle-api", "invite-api", "permissions-api", "notify-api", "audit-api"]
    assert [(spec.name, spec.port) for spec in compact if spec.name.endswith("-api")] == [("compact-api", 8200)]
    assert [spec.name for spec in compact if not spec.name.endswith("-api")] == [
        name for name in split if not name.endswith("-api")]  # the workers and the gateway stay as they are


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _record_starts(infra: Infra) -> list[ProcessStatus]:
    """Every process the real manager starts, with its pid, for checking afterwards that it is gone."""
    started: list[ProcessStatus] = []
    start = infra.manager.start

    def recording(spec: ProcessSpec) -> ProcessStatus:
        status = start(spec)
        started.append(status)
        return status

    infra.manager.start = recording  # type: ignore[method-assign]
    return started


def _gone(pid: int | None) -> bool:
    return pid is not None and not Path(f"/proc/{pid}").exists()


def test_a_busy_smtp_port_stops_the_servers_the_same_up_started(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        smtp_port = busy.getsockname()[1]
        settings = load_settings({"KAGI_VAR_DIR": str(tmp_path), "KAGI_PORTS_KAFKA": str(_free_port()),
                                  "KAGI_PORTS_MONGO": str(_free_port()), "KAGI_PORTS_SMTP": str(smtp_port)})
        infra = Infra(settings)
        started = _record_starts(infra)
        try:
            with pytest.raises(ProcessError, match=f"smtp: port {smtp_port} is already in use by another program"):
                infra.up()
        finally:
            leftovers = infra.down()  # only does something if the rollback failed
    assert [status.name for status in started] == ["broker", "mongo"]
    assert all(_gone(status.pid) for status in started), started
    assert leftovers == []
    assert [(status.name, status.state) for status in infra.status()] == [
        ("broker", "stopped"), ("mongo", "stopped"), ("smtp", "stopped")]


def test_a_process_not_ready_in_time_stops_only_what_the_same_up_started(tmp_path: Path) -> None:
    infra = Infra(load_settings({"KAGI_VAR_DIR": str(tmp_path)}))
    earlier = ProcessSpec("earlier", SLEEPER)
    infra.up([earlier])
    started = _record_starts(infra)
    try:
        with pytest.raises(ProcessError, match="never-ready not ready after 1s"):
            infra.up([earlier, ProcessSpec("sleeper", SLEEPER),
                      ProcessSpec("never-ready", SLEEPER, ready=lambda: False, ready_timeout_s=1)])
        states = {status.name: status.state for status in infra.status(
            [earlier, ProcessSpec("sleeper", SLEEPER), ProcessSpec("never-ready", SLEEPER)])}
        # `earlier` was running before this `up`: it belongs to someone else and keeps running.
        assert states == {"earlier": "running", "sleeper": "stopped", "never-ready": "stopped"}
        assert all(_gone(status.pid) for status in started if status.name != "earlier")
    finally:
        infra.down([earlier])
