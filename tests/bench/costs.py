"""``make bench-costs``: what one request of each type of the system benchmark's mix costs the rest of the system.

Starts every process as ``make bench-system`` does, with each one's /metrics on a free port, sets up the same
accounts (owners stepped up, a company and its admin), then sends each request type of ``tests.bench.system.MIX``
``KAGI_BENCH_COSTS_N`` times, one after the other, and reads every process's /metrics before and after:
``kagi_db_commands_total`` (PyMongo command monitoring in every database client) and ``kagi_internal_calls_total``
(the gateway's calls to the services, by route template). After each batch it waits longer than the gateway's
session cache lives, so every batch pays its session checks (the worst case; under load one check per account
per cache lifetime) and the events a request causes are handled by the workers before the second reading. What
the system does with no request at all (relays, consumers) is measured first and subtracted.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.bench.__main__ import configure_env, machine
from tests.bench.results import write_section
from tests.bench.system import LIMITS_ENV, MIX, account, company_admin, step_up
from tests.ports import free_block, free_ports

N = int(os.environ.get("KAGI_BENCH_COSTS_N", "20"))
IDLE_S = float(os.environ.get("KAGI_BENCH_COSTS_IDLE_S", "15"))
SETTLE_S = 6.0
"""After each batch: longer than the gateway's session cache (5 s), and time for the workers to handle events."""
HEADING = "Cost per request"

Key = tuple[str, str, str, str]
"""("db", process, command, collection) or ("call", process, method, route)."""
Totals = defaultdict[Key, float]


def metrics_urls(settings: Any) -> list[str]:
    from kagi_shared.metrics import METRICS_OFFSET, api_metrics_port

    ports = [settings.ports.gateway_metrics]
    for service, offset in METRICS_OFFSET.items():
        ports += [api_metrics_port(settings, service), settings.ports.worker_metrics_base + offset]
    return [f"http://127.0.0.1:{port}/metrics" for port in ports]


async def scrape(client: httpx.AsyncClient, urls: list[str]) -> Totals:
    """Every process's command and call counters, summed by their labels."""
    totals: Totals = defaultdict(float)
    for url in urls:
        reply = await client.get(url)
        reply.raise_for_status()
        for family in text_string_to_metric_families(reply.text):
            if family.name not in ("kagi_db_commands", "kagi_internal_calls"):
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                labels = sample.labels
                if family.name == "kagi_db_commands":
                    key: Key = ("db", labels["service"], labels["command"], labels["collection"])
                else:
                    key = ("call", labels["service"], labels["method"], labels["route"])
                totals[key] += sample.value
    return totals


def change(before: Totals, after: Totals) -> Totals:
    return defaultdict(float, {k: v - before[k] for k, v in after.items() if v != before[k]})


def per_request(delta: Totals, idle: Totals, seconds: float, count: int) -> dict[Key, float]:
    """What ``count`` requests added over ``seconds``, less the idle rate over the same time, per request."""
    out = {}
    for key in delta.keys() | idle.keys():
        value = (delta[key] - idle[key] * seconds) / count
        if value >= 0.05:
            out[key] = value
    return out


def worker(process: str) -> bool:
    return process.endswith("-worker")


def wake_up(key: Key) -> bool:
    """A change stream's getMore (an ``InsertWatch`` woken up): the cursor names its collection like a find's."""
    return key[0] == "db" and key[2] == "getMore"


def top(costs: dict[Key, float], kind: str, limit: int, workers: bool | None = None) -> str:
    rows = sorted(((v, k) for k, v in costs.items()
                   if k[0] == kind and (workers is None or (worker(k[1]) == workers and not (workers and wake_up(k))))),
                  reverse=True)[:limit]
    if kind == "db":
        return "<br>".join(f"{k[1]} {k[2]} {k[3] or '—'} {v:.1f}" for v, k in rows) or "—"
    return "<br>".join(f"{k[2]} `{k[3]}` {v:.1f}" for v, k in rows) or "—"


def db_total(costs: dict[Key, float], workers: bool) -> float:
    return sum(v for k, v in costs.items() if k[0] == "db" and worker(k[1]) == workers)


def by_process(costs: dict[Key, float], workers: bool | None = None) -> str:
    processes: defaultdict[str, float] = defaultdict(float)
    for key, value in costs.items():
        if key[0] == "db" and (workers is None or worker(key[1]) == workers):
            processes[key[1]] += value
    return ", ".join(f"{p} {v:.1f}" for p, v in sorted(processes.items(), key=lambda i: -i[1])) or "—"


def configure_metrics_ports() -> None:
    """Every process's /metrics on ports of this run's own: a system running beside it keeps the default ones."""
    (gateway,) = free_ports(1)
    os.environ["KAGI_PORTS_GATEWAY_METRICS"] = str(gateway)
    os.environ["KAGI_PORTS_API_METRICS_BASE"] = str(free_block(5))
    os.environ["KAGI_PORTS_WORKER_METRICS_BASE"] = str(free_block(5))
    # The state gauges read the database when scraped: once, at the first scrape, not within the measurement.
    os.environ["KAGI_HTTP_METRICS_REFRESH_S"] = "1000000"


async def main_async() -> None:
    from kagi_cli.main import system_specs
    from kagi_local.infra import Infra
    from kagi_shared.settings import get_settings

    settings = get_settings()
    infra = Infra(settings)
    specs = system_specs(settings)
    urls = metrics_urls(settings)
    print("starting the whole system …", flush=True)
    await asyncio.to_thread(infra.up)
    await asyncio.to_thread(infra.up, specs)
    results: list[tuple[str, Counter[int], float, dict[Key, float]]] = []
    try:
        lifecycle = httpx.AsyncClient(base_url=settings.service_url("lifecycle"),
                                      headers={"x-internal-token": settings.security.internal_token}, timeout=30)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.ports.gateway}", timeout=30) as client, \
                httpx.AsyncClient(timeout=10) as scraper:
            print(f"{N} owners stepped up, a company and its admin …", flush=True)
            users = []
            for _ in range(N):
                login_id, token = await account(client, lifecycle, ["owner"])
                users.append({"login_id": login_id, "token": token})
            admin_token = await company_admin(client, lifecycle)
            await asyncio.gather(*(step_up(client, settings, u) for u in users))
            for user in users:
                user["admin_token"] = admin_token
            await lifecycle.aclose()
            await scrape(scraper, urls)  # the first scrape refreshes the state gauges
            await asyncio.sleep(SETTLE_S)
            print(f"{IDLE_S:.0f} s without requests (subtracted from every batch) …", flush=True)
            t0 = time.monotonic()
            before = await scrape(scraper, urls)
            await asyncio.sleep(IDLE_S)
            idle_delta = change(before, await scrape(scraper, urls))
            idle_s = time.monotonic() - t0
            idle: Totals = defaultdict(float, {k: v / idle_s for k, v in idle_delta.items()})
            for op, _ in MIX:
                statuses: Counter[int] = Counter()
                t0 = time.monotonic()
                before = await scrape(scraper, urls)
                name = ""
                for i in range(N):
                    name, reply = await op(client, users[i % len(users)])
                    statuses[reply.status_code] += 1
                await asyncio.sleep(SETTLE_S)
                delta = change(before, await scrape(scraper, urls))
                window = time.monotonic() - t0
                costs = per_request(delta, idle, window, N)
                db = sum(v for k, v in costs.items() if k[0] == "db")
                calls = sum(v for k, v in costs.items() if k[0] == "call")
                print(f"  {name:<28} {dict(statuses)}  internal calls {calls:4.1f}/req  db commands {db:5.1f}/req",
                      flush=True)
                for (_, process, what, where), value in sorted(costs.items(), key=lambda i: (i[0][1], -i[1])):
                    print(f"      {process:<20} {what:<16} {where or '—':<40} {value:5.2f}", flush=True)
                results.append((name, statuses, window, costs))
    finally:
        await asyncio.to_thread(infra.down, specs)
        await asyncio.to_thread(infra.down)

    idle_rows = sorted(((v, k) for k, v in idle.items() if v >= 0.05), reverse=True)[:8]
    idle_text = ", ".join(f"{k[1]} {k[2]} {k[3] or '—'} {v:.1f}/s" for v, k in idle_rows) or "none"
    rows = "\n".join(
        f"| {name} | {', '.join(f'{s}×{n}' for s, n in sorted(statuses.items()))} "
        f"| {sum(v for k, v in costs.items() if k[0] == 'call'):.1f} | {top(costs, 'call', 6)} "
        f"| **{db_total(costs, False):.1f}** | {top(costs, 'db', 8, workers=False)} "
        f"| {db_total(costs, True):.1f} | {sum(v for k, v in costs.items() if wake_up(k)):.1f} "
        f"| {by_process(costs, workers=True)} | {top(costs, 'db', 5, workers=True)} |"
        for name, statuses, _, costs in results)
    weights = {name: w for (name, *_), (_, w) in zip(results, MIX, strict=True)}
    total = sum(weights.values())

    def mix_average(pick: Callable[[Key], bool]) -> float:
        return sum(weights[name] * sum(v for k, v in costs.items() if pick(k)) for name, _, _, costs in results) / total

    average = (f"Weighted by the mix, one request costs {mix_average(lambda k: k[0] == 'call'):.1f} internal calls, "
               f"**{mix_average(lambda k: k[0] == 'db' and not worker(k[1])):.1f}** DB commands while it is answered "
               f"and {mix_average(lambda k: k[0] == 'db' and worker(k[1])):.1f} after it (of which "
               f"{mix_average(wake_up):.1f} are change-stream wake-ups).")
    section = f"""# {HEADING}

Written by `make bench-costs` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}.
Every process of the system, the accounts of `make bench-system` (owners stepped up, a company admin); each request
type of its mix sent {N} times one after the other, every process's /metrics read before and after:
`kagi_db_commands_total` (PyMongo command monitoring, every database client) and `kagi_internal_calls_total` (the
gateway's calls to the services, by route template). Each batch is followed by {SETTLE_S:.0f} s, longer than the
gateway's session cache, so each batch starts with that cache cold: the owners' requests ({N} accounts) each pay a
session check, the company admin's (one account) one per cache lifetime; under load every account is checked once
per cache lifetime. The workers handle the events the requests caused in that time (their commands count too: a
mail sent is part of a step-up's cost; what is still queued at the second reading counts in the next batch). What the system does without requests was
measured over {idle_s:.0f} s first and is subtracted (top: {idle_text}). Figures are per request; commands below
0.05 per request are left out; a transaction's `commitTransaction` counts as one command.

"In the request" is what the services' APIs sent while answering; "after" is what the workers sent for the
events the requests caused (relays, consumers, mail), in the seconds that followed.

| request | answers | internal calls | calls by route | DB commands in the request | by API (process command collection) | DB commands after | of which change-stream getMores | by worker | top worker commands besides getMores |
|---|---|---|---|---|---|---|---|---|---|
{rows}

{average}
"""
    write_section(HEADING, section)
    print(section)
    print(f"wrote {Path(__file__).with_name('RESULTS.md')}")


def main() -> None:
    configure_env()
    configure_metrics_ports()
    os.environ.update(LIMITS_ENV)
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
