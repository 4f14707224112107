"""A worker's probes and metrics on one small HTTP server: ``/health``, ``/ready``, ``/metrics``.

The server runs in its own thread, so it answers even when the worker's event loop is stuck — which
is exactly what liveness must notice. The loop therefore proves it is alive by *beating* (a faust
timer calls ``beat()``); ``/health`` fails once the last beat is older than the allowed silence, and
Kubernetes restarts the pod. ``/ready`` is true once the worker has joined its consumer group and
while the loop beats.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

StartResponse = Callable[..., Any]


class WorkerProbes:
    def __init__(self, max_silence_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_silence_s = max_silence_s
        self._clock = clock
        self._last_beat = clock()
        self._joined = False
        self._metrics = make_wsgi_app()

    def beat(self) -> None:
        self._last_beat = self._clock()

    def joined(self) -> None:
        self._joined = True

    def alive(self) -> bool:
        return self._clock() - self._last_beat <= self.max_silence_s

    def ready(self) -> bool:
        return self._joined and self.alive()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path in ("/health", "/ready"):
            ok = self.alive() if path == "/health" else self.ready()
            body = b'{"status":"ok"}' if ok else b'{"status":"unavailable"}'
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        result: Iterable[bytes] = self._metrics(environ, start_response)
        return result


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes arrive every few seconds; the access log would drown the worker's own."""


class _ProbeServer(ThreadingWSGIServer):
    """Waits for connections in one long ``select`` instead of socketserver's half-second poll, which woke every
    worker and API twice a second only to ask whether to stop. ``shutdown`` connects to wake it instead."""

    WAIT_S = 60.0

    def shutdown(self) -> None:
        host, port = self.server_address[:2]
        stopper = threading.Thread(target=super().shutdown)
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError), socket.create_connection((str(host), int(port)), timeout=1):
                pass
            stopper.join(0.05)


def serve_probes(probes: Callable[[dict[str, Any], StartResponse], Iterable[bytes]], host: str,
                 port: int) -> WSGIServer:
    """Start the probe (or metrics) server on a daemon thread; raises ``OSError`` when the port is taken."""
    server = make_server(host, port, probes, _ProbeServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, args=(_ProbeServer.WAIT_S,), name="worker-probes",
                     daemon=True).start()
    return server


__all__ = ["WorkerProbes", "serve_probes"]
