"""Free loopback ports for processes a test or benchmark starts (a module of its own: importing it loads nothing
else, so the benchmark runner and the ``make run`` test need none of ``tests.support``'s imports).

A run reserves its ports when it starts and its processes bind them minutes later. Ports are therefore taken below
the kernel's ephemeral range: a port from that range (what ``bind(0)`` returns) may in the meantime be handed to any
outgoing connection on the machine as its local port, and a worker then found its probe port busy (a clean-clone
``make test`` lost notify-worker's probes that way while another run was connecting to its own servers).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10_000


def unassigned_range() -> tuple[int, int]:
    """Ports the kernel never picks on its own: from ``LOWEST`` to just below its ephemeral range."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32_768  # Linux's default
    return LOWEST, max(ephemeral_low - 1, LOWEST + 1_000)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` different ports nothing listens on now, outside the range the kernel hands out."""
    low, high = unassigned_range()
    chosen: set[int] = set()
    for _ in range(count * 100):
        port = random.randint(low, high)
        if port not in chosen and _bindable(port):
            chosen.add(port)
            if len(chosen) == count:
                return list(chosen)
    raise RuntimeError(f"no {count} free ports found in {low}-{high}")


def free_block(size: int) -> int:
    """A base port whose next ``size`` ports are all free (workers listen on base + 1..size)."""
    low, high = unassigned_range()
    for _ in range(100):
        base = random.randint(low, high - size)
        if all(_bindable(port) for port in range(base + 1, base + size + 1)):
            return base
    raise RuntimeError(f"no block of {size} free ports found")
