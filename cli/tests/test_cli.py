"""The `kagi` command: help everywhere, one clear line and a non-zero exit on errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

KAGI = [sys.executable, "-m", "kagi_cli.main"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KAGI, *args], capture_output=True, text=True, timeout=60,  # noqa: S603
                          env={**os.environ, **(env or {})})


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
