"""`make run` (= `kagi run`) as a developer uses it: everything starts, the demo accounts it prints log in
through the gateway, and Ctrl-C stops every process it started.

It runs its own system on its own ports and var dir, next to the test session's.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp

from kagi_local.infra import Infra
from kagi_shared.settings import load_settings
from tests.ports import free_ports

PORTS = ("kafka", "mongo", "smtp", "gateway", "lifecycle", "invite", "permissions", "notify", "audit")
DEMO = re.compile(r"^\s+demo .+?\s(\S+@\S+)\s+password (\S+)\s+\((created|exists)\)$")
DEMO_TOTP = re.compile(r"TOTP secret (\S+) for (\S+@\S+)")


def _read_until(process: subprocess.Popen[str], marker: str, timeout_s: float) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"kagi run ended early (exit {process.poll()}):\n" + "".join(lines))
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} within {timeout_s} s:\n" + "".join(lines))


def test_kagi_run_starts_everything_prints_working_demo_logins_and_ctrl_c_stops_it_all(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGI_")}
    env.update({f"KAGI_PORTS_{name.upper()}": str(port)
                for name, port in zip(PORTS, free_ports(len(PORTS)), strict=True)})
    env.update({"KAGI_VAR_DIR": str(tmp_path / "var"), "KAGI_PORTS_WORKER_METRICS_BASE": "0",
                "KAGI_PORTS_API_METRICS_BASE": "0", "KAGI_PORTS_GATEWAY_METRICS": "0", "KAGI_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1"})
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI", "SMTP_URL"):
        env.pop(var, None)
    settings = load_settings(env)
    kagi = str(Path(sys.executable).with_name("kagi"))
    process = subprocess.Popen([kagi, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # noqa: S603
                               text=True, start_new_session=True)
    try:
        output = _read_until(process, "Press Ctrl-C to stop.", timeout_s=420)
        demo = [m.groups() for line in output if (m := DEMO.match(line))]
        assert len(demo) == 4, "".join(output)  # an owner, a company admin, an operator, an enrolled system user
        gateway = f"http://127.0.0.1:{settings.ports.gateway}"
        assert f"gateway  {gateway}" in "".join(output)
        with httpx.Client(base_url=gateway, timeout=30) as http:
            assert http.get("/ready").status_code == 200
            secrets = {m.group(2): m.group(1) for line in output if (m := DEMO_TOTP.search(line))}
            assert len(secrets) == 2, "".join(output)  # the company admin and the operator log in with TOTP
            tokens = {}
            for login_id, password, _ in demo:
                body = {"loginId": login_id, "password": password}
                if login_id in secrets:  # the seed confirmed the current step's code: the app's next one
                    body["totpCode"] = pyotp.TOTP(secrets[login_id]).at(int(time.time()) + 30)
                login = http.post("/api/v1/auth/login", json=body)
                assert login.status_code == 200, login.text
                tokens[login_id] = {"Authorization": f"Bearer {login.json()['accessToken']}"}
            # The demo admin is its company's primary admin; the demo system user holds TAXIS.
            company = http.get("/api/v1/company", headers=tokens["admin@partner.example.jp"])
            assert company.status_code == 200 and company.json()["name"] == "デモパートナーガス株式会社", company.text
            held = http.get("/api/v1/me/permissions", headers=tokens["hanako.takuso@partner.example.jp"]).json()
            assert {p["system"]: p["value"] for p in held["permissions"]}["TAXIS"] == "1011", held
        running = [s for s in Infra(settings).status() if s.state == "running"]
        assert {s.name for s in running} >= {"broker", "mongo", "smtp"}, running

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert process.wait(timeout=180) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    from kagi_cli.main import demo_specs, system_specs

    infra = Infra(settings)
    left = [s for s in infra.status() + infra.status(system_specs(settings) + demo_specs(settings))
            if s.state == "running"]
    assert left == [], f"still running after Ctrl-C: {left}"
    ports = [getattr(settings.ports, name) for name in PORTS]
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
