"""Free loopback ports for processes a test or benchmark starts (a module of its own: importing it loads nothing
else, so the benchmark runner and the ``make run`` test need none of ``tests.support``'s imports)."""

from __future__ import annotations

import random
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


def free_block(size: int) -> int:
    """A base port whose next ``size`` ports are all free (workers listen on base + 1..size)."""
    for _ in range(100):
        base = random.randint(20_000, 60_000)
        sockets = []
        try:
            for port in range(base + 1, base + size + 1):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no block of {size} free ports found")
