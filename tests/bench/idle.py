"""``make bench-idle``: what the whole system costs while nobody uses it.

Starts every process as ``make up`` does (embedded broker, database and SMTP sink, every API and worker, the
gateway and the target simulator) on free ports under a temporary var directory, waits until each is ready and
the start-up work has settled, then samples every process's CPU time (utime + stime from ``/proc/<pid>/stat``)
over a window without a single request. CPU time counts only what a process itself ran, so other load on the
machine changes it far less than wall-clock figures; the machine's own load over the window is reported beside it.

``KAGI_TOPOLOGY=compact make bench-idle`` measures the compact topology (one process for every internal API) and
writes its own section, so the two stand side by side.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.__main__ import configure_env, machine
from tests.bench.results import write_section
from tests.bench.system import cpu_seconds, process_pids, rss_mib

WINDOW_S = float(os.environ.get("KAGI_BENCH_IDLE_S", "60"))
SETTLE_S = float(os.environ.get("KAGI_BENCH_IDLE_SETTLE_S", "15"))
TARGET_PCT = 5.0


def machine_busy() -> tuple[float, float]:
    """(busy jiffies, total jiffies) of the whole machine from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def sample(pids: dict[str, int], window_s: float) -> tuple[dict[str, float], float, float]:
    """CPU % of one core per process over ``window_s``; plus the window and the machine's busy share in %."""
    before = {n: cpu_seconds(p) for n, p in pids.items()}
    busy0, total0 = machine_busy()
    t0 = time.monotonic()
    time.sleep(window_s)
    wall = time.monotonic() - t0
    busy1, total1 = machine_busy()
    usage = {n: (cpu_seconds(p) - before[n]) / wall * 100 for n, p in pids.items()}
    machine_pct = (busy1 - busy0) / max(total1 - total0, 1) * 100 * (os.cpu_count() or 1)
    return usage, wall, machine_pct


def main() -> None:
    configure_env()
    from kagi_cli.main import demo_specs, system_specs
    from kagi_local.infra import Infra
    from kagi_shared.settings import get_settings

    settings = get_settings()
    infra = Infra(settings)
    specs = system_specs(settings) + demo_specs(settings)
    names = ["broker", "mongo", "smtp", *[s.name for s in specs]]
    print("starting the whole system …", flush=True)
    infra.up()
    try:
        infra.up(specs)
        print(f"every process ready; letting start-up settle for {SETTLE_S:.0f} s …", flush=True)
        time.sleep(SETTLE_S)
        pids = process_pids(infra.manager, names)
        missing = sorted(set(names) - set(pids))
        if missing:
            raise SystemExit(f"bench-idle: not running: {', '.join(missing)}")
        print(f"sampling {WINDOW_S:.0f} s without requests …", flush=True)
        usage, wall, machine_pct = sample(pids, WINDOW_S)
        memory = {n: rss_mib(p) for n, p in pids.items()}
    finally:
        infra.down(specs)
        infra.down()

    total = sum(usage.values())
    for name in sorted(usage, key=lambda n: -usage[n]):
        print(f"  {name:<22} {usage[name]:5.1f} %  {memory[name]:6.0f} MiB")
    print(f"  {'total':<22} {total:5.1f} %  {sum(memory.values()):6.0f} MiB   (target ≤ {TARGET_PCT:.0f} %)")
    print(f"  machine busy over the window (every process of every user): {machine_pct:.0f} % of one core")

    rows = "\n".join(f"| {n} | {usage[n]:.2f} % | {memory[n]:.0f} MiB |"
                     for n in sorted(usage, key=lambda n: -usage[n]))
    verdict = "meets" if total <= TARGET_PCT else "misses"
    heading = "Idle cost" if settings.topology == "split" else "Idle cost, compact topology"
    apis = "every API" if settings.topology == "split" else "one process for every internal API (`KAGI_TOPOLOGY=compact`)"
    section = f"""# {heading}

Written by `make bench-idle` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}.
Every process of `make up` ({len(pids)}: embedded broker, database and SMTP sink, {apis}, every worker, the gateway
and the target simulator), ready, then {SETTLE_S:.0f} s to settle, then {wall:.0f} s without a single request.
CPU is each process's own CPU time (user + system, `/proc/<pid>/stat`) over the window, in percent of one core:
other load on the machine slows a process but adds little to its own CPU time. The machine as a whole (every
process of every user, from `/proc/stat`) was busy {machine_pct:.0f} % of one core over the same window, so the
figures were taken on a {'shared, busy' if machine_pct - total > 50 else 'quiet'} machine.

Total: **{total:.1f} % of one core** ({verdict} the target of ≤ {TARGET_PCT:.0f} %), {sum(memory.values()):.0f} MiB RSS.

| process | CPU (% of one core) | RSS |
|---|---|---|
{rows}
"""
    write_section(heading, section)
    print(f"wrote {Path(__file__).with_name('RESULTS.md')}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
