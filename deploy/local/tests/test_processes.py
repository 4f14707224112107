"""Process management for the embedded setup: readiness, clear failures, stopping only what we started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kagi_local.processes import ProcessError, ProcessManager, ProcessSpec


def test_a_process_that_dies_at_start_up_is_reported_with_its_log(tmp_path: Path) -> None:
    manager = ProcessManager(tmp_path)
    spec = ProcessSpec("boom", [sys.executable, "-c", "print('bad config: KAGI_X'); raise SystemExit(3)"],
                       ready=lambda: False, ready_timeout_s=30)
    manager.start(spec)
    with pytest.raises(ProcessError, match="boom exited during start-up") as caught:
        manager.wait_ready(spec)
    assert "bad config: KAGI_X" in str(caught.value)
    assert manager.status("boom").state != "running"


def test_a_busy_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        spec = ProcessSpec("server", [sys.executable, "-c", "import time; time.sleep(60)"], port=port)
        with pytest.raises(ProcessError, match=f"port {port} is already in use"):
            ProcessManager(tmp_path).start(spec)


def test_stop_ends_exactly_the_process_it_started(tmp_path: Path) -> None:
    manager = ProcessManager(tmp_path)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        status = manager.start(ProcessSpec("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"]))
        assert manager.status("sleeper").state == "running"
        assert manager.stop("sleeper") is True
        assert manager.status("sleeper").state == "stopped"
        assert status.pid is not None and not Path(f"/proc/{status.pid}").exists()
        assert bystander.poll() is None  # untouched
    finally:
        bystander.kill()
        bystander.wait()


def test_a_recycled_pid_in_a_stale_pid_file_is_never_signalled(tmp_path: Path) -> None:
    manager = ProcessManager(tmp_path)
    manager.run_dir.mkdir(parents=True)
    # Our own pid with a start time that is not ours: what a pid file looks like after a reboot.
    manager.pid_file("old").write_text(f"{os.getpid()} 1\n")
    assert manager.status("old").state == "stale"
    assert manager.stop("old") is False  # and this test process is still alive to assert it
