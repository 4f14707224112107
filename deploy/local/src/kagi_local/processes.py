"""Start, stop and report local processes by pid file: the embedded servers and every service.

A pid file records the pid *and* the process start time, so ``stop`` never signals a
process that merely reused the pid. Each process logs to ``var/log/<name>.log``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


class ProcessError(RuntimeError):
    """A process could not be started or did not become ready; the message says why."""


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None
    """Extra readiness probe after the port accepts connections."""
    ready_timeout_s: float = 60.0


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    state: str  # running | stopped | stale
    pid: int | None
    port: int | None

    def line(self) -> str:
        port = f" port {self.port}" if self.port else ""
        pid = f" pid {self.pid}" if self.pid else ""
        return f"{self.name:<22} {self.state}{pid}{port}"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (start time) counted after the parenthesised command name, which may hold spaces.
    return stat.rsplit(")", 1)[1].split()[19]


class ProcessManager:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.run_dir = var_dir / "run"
        self.log_dir = var_dir / "log"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _read_pid(self, name: str) -> tuple[int, str] | None:
        try:
            pid_s, started = self.pid_file(name).read_text().split()
            return int(pid_s), started
        except (OSError, ValueError):
            return None

    def pid(self, name: str) -> int | None:
        """The pid if the recorded process is still the one we started."""
        recorded = self._read_pid(name)
        if recorded is None:
            return None
        pid, started = recorded
        # A child that exited stays a zombie until reaped: that is not a running process.
        return pid if _start_time(pid) == started and _alive(pid) else None

    def status(self, name: str, port: int | None = None) -> ProcessStatus:
        pid = self.pid(name)
        if pid is not None:
            return ProcessStatus(name, "running", pid, port)
        return ProcessStatus(name, "stale" if self.pid_file(name).exists() else "stopped", None, port)

    def start(self, spec: ProcessSpec) -> ProcessStatus:
        if self.pid(spec.name) is not None:
            return self.status(spec.name, spec.port)
        (self.run_dir / f"{spec.name}.ready").unlink(missing_ok=True)
        # A process we just stopped may hold its port a moment longer: give the kernel a few seconds.
        for _ in range(50):
            if spec.port is None or not port_open(spec.port):
                break
            time.sleep(0.1)
        if spec.port is not None and port_open(spec.port):
            raise ProcessError(
                f"{spec.name}: port {spec.port} is already in use by another program; "
                f"stop it or choose another port (see README, 'Ports')"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_file(spec.name).open("ab")
        proc = subprocess.Popen(  # noqa: S603 - argv built by this module, never from user input
            spec.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **spec.env},
            start_new_session=True,
        )
        log.close()
        started = None
        for _ in range(100):
            started = _start_time(proc.pid)
            if started:
                break
            time.sleep(0.01)
        self.pid_file(spec.name).write_text(f"{proc.pid} {started}\n")
        return ProcessStatus(spec.name, "running", proc.pid, spec.port)

    def wait_ready(self, spec: ProcessSpec) -> None:
        deadline = time.monotonic() + spec.ready_timeout_s
        while time.monotonic() < deadline:
            if self.pid(spec.name) is None:
                raise ProcessError(f"{spec.name} exited during start-up; see {self.log_file(spec.name)}:\n"
                                   + self.tail(spec.name))
            if (spec.port is None or port_open(spec.port)) and (spec.ready is None or _probe(spec.ready)):
                return
            time.sleep(0.1)
        raise ProcessError(f"{spec.name} not ready after {spec.ready_timeout_s:.0f}s; "
                           f"see {self.log_file(spec.name)}:\n" + self.tail(spec.name))

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, name: str, timeout_s: float = 10.0) -> bool:
        """Stop the process we started (SIGTERM, then SIGKILL); True if one was running."""
        pid = self.pid(name)
        self.pid_file(name).unlink(missing_ok=True) if pid is None else None
        if pid is None:
            return False
        self.signal(name, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            self.signal(name, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file(name).unlink(missing_ok=True)
        return True

    def signal(self, name: str, sig: signal.Signals) -> None:
        pid = self.pid(name)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)  # the whole session: a process and the children it spawned


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        # The main thread has exited. A child of ours is gone only once reaped: until its other threads have exited
        # too (the database's storage threads take a moment), waitpid cannot reap it and it still holds its files
        # and port. Someone else's zombie is reaped by its own parent.
        try:
            return os.waitpid(pid, os.WNOHANG)[0] != pid
        except ChildProcessError:
            return False
    return True


def _probe(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except Exception:
        return False
