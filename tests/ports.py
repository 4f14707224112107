"""Free loopback ports for processes a test or benchmark starts (a module of its own: importing it loads nothing
else, so the benchmark runner and the ``make run`` test need none of ``tests.support``'s imports)."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """``count`` different ports nothing listens on now (all bound at once, so no two are the same)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
