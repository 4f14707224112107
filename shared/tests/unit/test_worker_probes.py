"""A worker's probes: liveness follows the event loop's beat, readiness also needs the consumer group."""

from __future__ import annotations

import socket
import threading

import httpx
from stepped_clock import SteppedClock

from kagi_shared.worker_probes import WorkerProbes, serve_probes


def test_a_silent_loop_is_not_alive_and_not_ready() -> None:
    clock = SteppedClock(1000.0)
    probes = WorkerProbes(60, clock)
    assert probes.alive() and not probes.ready()  # alive from the start, ready only after joining
    probes.joined()
    assert probes.ready()
    clock.now += 61
    assert not probes.alive() and not probes.ready()
    probes.beat()
    assert probes.alive() and probes.ready()


def test_probe_server_answers_over_http_even_for_a_stuck_loop() -> None:
    clock = SteppedClock(1000.0)
    probes = WorkerProbes(30, clock)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = serve_probes(probes, "127.0.0.1", port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            assert http.get("/health").status_code == 200
            assert http.get("/ready").status_code == 503  # not in its consumer group yet
            probes.joined()
            assert http.get("/ready").json() == {"status": "ok"}
            metrics = http.get("/metrics")
            assert metrics.status_code == 200 and "# TYPE process_cpu_seconds_total" in metrics.text
            clock.now += 31  # the loop stopped beating: the thread still answers, with the truth
            assert http.get("/health").status_code == 503
            assert http.get("/ready").status_code == 503
    finally:
        # The server waits a minute per select (no half-second poll): shutdown must not wait for it.
        stopping = threading.Thread(target=server.shutdown)
        stopping.start()
        stopping.join(10)
        assert not stopping.is_alive()
        server.server_close()


def test_a_taken_port_is_reported() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            serve_probes(WorkerProbes(30), "127.0.0.1", port)
        except OSError:
            return
    raise AssertionError("a taken port must raise OSError")
