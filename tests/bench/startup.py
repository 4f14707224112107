"""``make bench-cli``: how long the operators' ``kagi`` command takes to start (issue 21, goal 6).

Runs the installed ``kagi`` entry point as an operator would, for commands that need no server, several times
each, and reports the wall time (what a person waits for) beside the CPU time of the child (user + system, which
other load on the shared machine changes far less). That these commands load no service stack is a test
(``cli/tests/test_cli.py``); this is the timing.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.__main__ import configure_env, machine, pct
from tests.bench.results import write_section

RUNS = int(os.environ.get("KAGI_BENCH_CLI_RUNS", "10"))
TARGET_S = 0.5
COMMANDS: list[list[str]] = [
    ["--help"],
    ["calendar", "schedule", "--submitted-on", "2026-05-01"],
    ["catalogue", "list"],
]


def kagi() -> str:
    """The ``kagi`` script next to the interpreter running the benchmark (the workspace's venv)."""
    return str(Path(sys.executable).with_name("kagi"))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(args: list[str], runs: int) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds) of each run; one untimed run first so the page cache holds the modules."""
    subprocess.run([kagi(), *args], capture_output=True, check=True, timeout=120)  # noqa: S603
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        cpu0 = children_cpu()
        t0 = time.perf_counter()
        subprocess.run([kagi(), *args], capture_output=True, check=True, timeout=120)  # noqa: S603
        walls.append(time.perf_counter() - t0)
        cpus.append(children_cpu() - cpu0)
    return walls, cpus


def main() -> None:
    configure_env()  # a private var dir: `mail list` and friends read nothing of a running system
    load_before = os.getloadavg()[0]
    rows = []
    worst = 0.0
    for args in COMMANDS:
        walls, cpus = time_command(args, RUNS)
        p50 = pct(walls, 0.5)
        worst = max(worst, p50)
        rows.append(f"| `kagi {' '.join(args)}` | {p50:.2f} s | {max(walls):.2f} s | {pct(cpus, 0.5):.2f} s |"
                    f" {'yes' if p50 <= TARGET_S else 'no'} |")
        print(rows[-1], flush=True)
    load_after = os.getloadavg()[0]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    verdict = "meets" if worst <= TARGET_S else "misses"
    body = f"""# kagi start-up

Written by `make bench-cli` on {now} UTC. Machine: {machine()}.
The installed `kagi` entry point, {RUNS} runs per command after one untimed run; wall time is what the operator
waits for (interpreter start included), CPU is the child's user + system time. Load average (1 min) before / after:
{load_before:.1f} / {load_after:.1f} on {os.cpu_count()} cores shared with other work; a loaded machine stretches
the wall time, not the CPU time.

Slowest median: **{worst:.2f} s** ({verdict} the target of ≤ {TARGET_S} s).

| command | wall p50 | wall max | CPU p50 | ≤ {TARGET_S} s |
|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    write_section("kagi start-up", body)


if __name__ == "__main__":
    main()
