"""The `kagi` command: help everywhere, one clear line and a non-zero exit on errors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import DatabaseDown, run

from kagi_cli.main import build_parser, main, unreachable
from kagi_shared.settings import get_settings, load_settings


@pytest.mark.parametrize("command", [[], ["infra"], ["mail", "list"], ["mail", "show"], ["demo", "seed"],
                                     ["catalogue"], ["run"], ["status"]])
def test_help_everywhere(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "usage: kagi" in result.stdout


def test_bad_setting_is_one_line_and_exit_one(tmp_path: Path) -> None:
    result = run("infra", "status", env={"KAGI_PORTS_KAFKA": "lots"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "kagi: KAGI_PORTS_KAFKA='lots': Expected `int`, got `str`"]


def test_mail_commands_read_the_sink_directory(tmp_path: Path) -> None:
    env = {"KAGI_VAR_DIR": str(tmp_path)}
    assert "no mail in" in run("mail", "list", env=env).stdout
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "20260101T000000000000-a.eml").write_bytes(
        "To: owner@example.jp\r\nSubject: =?utf-8?b?44GC?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n本文\r\n"
        .encode())
    listing = run("mail", "list", env=env).stdout
    assert "owner@example.jp" in listing and "あ" in listing
    shown = run("mail", "show", "1", env=env)
    assert "本文" in shown.stdout
    missing = run("mail", "show", "7", env=env)
    assert missing.returncode == 1 and missing.stderr.startswith("kagi: no mail '7'")


def test_infra_status_names_every_embedded_server(tmp_path: Path) -> None:
    result = run("infra", "status", env={"KAGI_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["broker", "mongo", "smtp"]
    real = run("infra", "status", env={"KAGI_VAR_DIR": str(tmp_path), "MONGODB_URI": "mongodb://db:27017"})
    assert [line.split()[0] for line in real.stdout.splitlines()] == ["broker", "smtp"]  # real DB: not embedded


def test_infra_help_describes_every_action() -> None:
    lines = run("infra", "--help").stdout.splitlines()
    for action in ("up", "down", "status"):
        line = next((ln for ln in lines if ln.split()[:1] == [action]), "")
        assert len(line.split()) > 2, f"'kagi infra --help' has no description for {action!r}"


def test_every_subcommand_has_a_help_line_and_a_description() -> None:
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                continue
            helped = {choice.dest for choice in action._choices_actions if choice.help}
            for name, child in action.choices.items():
                if name not in helped:
                    missing.append(f"{path} {name}: no help in '{path} --help'")
                if not child.description:
                    missing.append(f"{path} {name}: no description in '{path} {name} --help'")
                walk(child, f"{path} {name}")

    walk(build_parser(), "kagi")
    assert missing == []


def test_demo_seed_with_the_database_down_is_one_line(database_down: DatabaseDown) -> None:
    result = run("demo", "seed", env=database_down.env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [database_down.refusal]


def test_demo_seed_refuses_in_production(tmp_path: Path) -> None:
    """Issue 15, finding 11: the demo accounts' passwords are in the README; production never gets them."""
    result = run("demo", "seed", env={"KAGI_VAR_DIR": str(tmp_path), "KAGI_ENV": "prod"})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "kagi: demo seed creates accounts whose passwords are public; refused in production (KAGI_ENV=prod)"]


def test_the_database_uri_password_never_reaches_the_error_line(database_down: DatabaseDown) -> None:
    port = database_down.port
    result = run("audit", "verify", env={**database_down.env, "MONGODB_URI": f"mongodb://kagi:s3cret@127.0.0.1:{port}/"})
    assert result.returncode == 1
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and f"127.0.0.1:{port}" in result.stderr


def test_demo_seed_with_the_broker_down_is_one_line(own_prefix: str, refused_port: int) -> None:
    # The embedded database is up (own_prefix asks for it); only the broker is unreachable.
    port = refused_port
    result = run("demo", "seed", env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
                                      "KAGI_MONGO_DB_PREFIX": own_prefix})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kagi: cannot reach the broker at 127.0.0.1:{port} ("), lines


@pytest.fixture
def own_var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings of this process pointed at an empty var dir, and the cached settings forgotten afterwards."""
    monkeypatch.setenv("KAGI_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_mail_list_numbers_are_the_ones_show_accepts(own_var_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # In-process: one interpreter start per command would make this the slowest test of the file.
    tmp_path = own_var_dir

    def kagi(*args: str) -> str:
        assert main(list(args)) == 0
        return capsys.readouterr().out

    (tmp_path / "mail").mkdir()
    for stamp, to, subject in (("20260101T000000000000-a", "alice@example.jp", "for alice 1"),
                               ("20260101T000001000000-b", "bob@example.jp", "for bob 1"),
                               ("20260101T000002000000-c", "alice@example.jp", "for alice 2"),
                               ("20260101T000003000000-d", "bob@example.jp", "for bob 2")):
        (tmp_path / "mail" / f"{stamp}.eml").write_bytes(
            f"To: {to}\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody {subject}\r\n"
            .encode())

    def listed(*args: str) -> list[tuple[str, str]]:
        return [(line.split()[0], line.split("  ")[-1]) for line in kagi("mail", "list", *args).splitlines()]

    assert listed("--to", "bob") == [("2", "for bob 1"), ("4", "for bob 2")]
    assert listed("--last", "2") == [("3", "for alice 2"), ("4", "for bob 2")]
    assert listed("--to", "alice", "--last", "1") == [("3", "for alice 2")]
    for number, subject in listed("--to", "bob"):
        shown = kagi("mail", "show", number)
        assert f"Subject: {subject}" in shown and "To: bob@example.jp" in shown
    assert "no mail to 'carol'" in kagi("mail", "list", "--to", "carol")


def test_broker_and_database_failures_become_one_line() -> None:
    from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
    from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

    settings = load_settings({"MONGODB_URI": "mongodb://kagi:s3cret@db-0:27017,db-1:27017/kagi?replicaSet=rs0",
                              "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"})
    lines = [unreachable(exc, settings) for exc in (
        ServerSelectionTimeoutError("db-0:27017: refused\nTopology Description: …"),
        OperationFailure("Authentication failed.\nmore"),
        KafkaConnectionError("Unable to bootstrap from [('kafka', 9092)]"),
        TopicAuthorizationFailedError(),
        TimeoutError(),
        ValueError("not ours"),
    )]
    assert lines[0] == ("cannot reach the database at db-0:27017,db-1:27017 (ServerSelectionTimeoutError); "
                        "is it up? ('kagi infra up')")
    assert lines[1] == "database error (OperationFailure): Authentication failed."
    assert lines[2] is not None and lines[2].startswith("cannot reach the broker at kafka:9092 (")
    assert lines[3] is not None and lines[3].startswith("broker error at kafka:9092: ")
    assert lines[4] == "timed out (no answer); is everything up? ('kagi status')"
    assert lines[5] is None
    assert all("\n" not in line and "s3cret" not in line for line in lines if line)


# What `kagi` may load for commands that talk to no server: the service stacks took ~3 s to import.
HEAVY = ("litestar", "pymongo", "faust", "aiokafka", "structlog", "opentelemetry", "httpx")
LOADED = """
import contextlib, json, sys
from kagi_cli.main import main
with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
"""


@pytest.mark.parametrize("command", [["--help"], ["calendar", "--help"], ["calendar", "schedule", "--submitted-on",
                                                                         "2026-05-01"],
                                     ["calendar", "days", "--start", "2026-05-01", "--days", "3"],
                                     ["catalogue", "list"], ["mail", "list"], ["infra", "--help"]])
def test_commands_without_a_server_do_not_load_the_service_stacks(command: list[str], tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", LOADED, *command], capture_output=True, text=True,  # noqa: S603
                            timeout=60, env={**os.environ, "KAGI_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert "kagi_cli" in loaded  # the probe did run the command
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_accounts_unlock_with_the_database_down_is_one_line(database_down: DatabaseDown) -> None:
    result = run("accounts", "unlock", "operator@kagi.example.jp", env=database_down.env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [database_down.refusal]
