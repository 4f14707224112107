"""Lifecycle benchmark (issue 3): password logins per core, and the inactivity sweep's cost.

``python -m tests.bench.lifecycle`` — replaces only the ``# Lifecycle benchmark`` section of
``tests/bench/RESULTS.md``. Figures are reported, never asserted.

(a) Logins through the gateway with the production argon2id parameters (the defaults of
    ``SecuritySettings``; any ``KAGI_SECURITY_ARGON2_*`` override is removed from the environment
    of every process started here, and the stored hash's parameters are read back and printed).
    Closed loop: ``c`` clients each log in, wait for the answer, log in again, each with its own
    account. Meanwhile a probe asks the gateway's ``/health`` every 100 ms. The gateway's per-address
    login limit (30/min) is raised for this run only: every request comes from 127.0.0.1, and the
    limiter is not what is measured.
(b) The sweep use case over 200,000 accounts inserted directly (documents built by the
    repository's own ``_to_doc`` from ``Account`` structs with the ladder fields the service
    computes), 1 % due at the chosen moment, then 0 % due.

Scale: ``KAGI_BENCH_LOGIN_CONCURRENCY`` (default ``1,2,4,8``), ``KAGI_BENCH_LOGIN_STEP_S`` (20),
``KAGI_BENCH_SWEEP_ACCOUNTS`` (200000), ``KAGI_BENCH_SWEEP_DUE_PERCENT`` (1).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.bench import results
from tests.bench.__main__ import configure_env, machine, pct

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "Lifecycle benchmark"
CONCURRENCY = [int(c) for c in os.environ.get("KAGI_BENCH_LOGIN_CONCURRENCY", "1,2,4,8").split(",")]
STEP_S = float(os.environ.get("KAGI_BENCH_LOGIN_STEP_S", "20"))
SWEEP_ACCOUNTS = int(os.environ.get("KAGI_BENCH_SWEEP_ACCOUNTS", "200000"))
DUE_PERCENT = float(os.environ.get("KAGI_BENCH_SWEEP_DUE_PERCENT", "1"))
PASSWORD = "Bench-pass-2026"  # noqa: S105 - load-test accounts on a throwaway database
KEYCLOAK_PER_VCPU = 15.0
HEALTH_TARGET_S = 0.050


def write_section(body: str) -> None:
    results.write_section(HEADING, body)


def production_argon2_env() -> dict[str, int]:
    """Drop every argon2 override so the processes started here use the production defaults."""
    from kagi_shared.settings import SecuritySettings

    for var in [v for v in os.environ if v.startswith("KAGI_SECURITY_ARGON2_")]:
        os.environ.pop(var)
    defaults = SecuritySettings()
    return {"t": defaults.argon2_time_cost, "m": defaults.argon2_memory_kib, "p": defaults.argon2_parallelism}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- (a) logins --------------------------------------------------------------------------------------
@dataclass
class LoginStep:
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    health: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    cpu_s: float = 0.0
    gateway_cpu_s: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


async def login_step(gateway: str, login_ids: list[str], concurrency: int, pids: dict[str, int]) -> LoginStep:
    step = LoginStep(concurrency)
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=concurrency + 2)

    async def client_loop(http: httpx.AsyncClient, login_id: str) -> None:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                reply = await http.post("/api/v1/auth/login", json={"loginId": login_id, "password": PASSWORD})
                status = reply.status_code
            except httpx.HTTPError:
                status = 0
            if stop.is_set():
                return  # a login finishing after the window is not counted
            step.latencies.append(time.perf_counter() - t)
            step.statuses[status] = step.statuses.get(status, 0) + 1

    async def health_loop(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                (await http.get("/health")).raise_for_status()
                step.health.append(time.perf_counter() - t)
            except httpx.HTTPError:
                step.health.append(float("inf"))
            await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - t)))

    async with httpx.AsyncClient(base_url=gateway, timeout=60, limits=limits) as http, \
            httpx.AsyncClient(base_url=gateway, timeout=10) as probe:
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        tasks = [asyncio.create_task(client_loop(http, login_ids[i])) for i in range(concurrency)]
        tasks.append(asyncio.create_task(health_loop(probe)))
        await asyncio.sleep(STEP_S)
        stop.set()
        step.elapsed = time.perf_counter() - started
        after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    step.cpu_s = after["lifecycle-api"] - before["lifecycle-api"]
    step.gateway_cpu_s = after["gateway"] - before["gateway"]
    return step


async def logins(settings: Any, pids: dict[str, int]) -> dict[str, Any]:
    from kagi_shared.mongo import database_name, make_client

    gateway = f"http://127.0.0.1:{settings.ports.gateway}"
    internal = httpx.AsyncClient(base_url=settings.service_url("lifecycle"), timeout=60,
                                 headers={"x-internal-token": settings.security.internal_token})
    login_ids = []
    async with internal:
        for _ in range(max(CONCURRENCY)):
            login_id = f"bench-{uuid.uuid4().hex[:10]}@example.jp"
            reply = await internal.post("/internal/accounts", json={"loginId": login_id, "password": PASSWORD,
                                                                    "roles": ["owner"]})
            reply.raise_for_status()
            login_ids.append(login_id)
    client = make_client(settings)
    doc = await client[database_name(settings, "lifecycle")]["accounts"].find_one({"login_id": login_ids[0]})
    await client.close()
    stored_params = doc["password_hash"].split("$")[3] if doc else "?"
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as http:  # warm-up: connections, caches
        for login_id in login_ids[:2]:
            (await http.post("/api/v1/auth/login", json={"loginId": login_id, "password": PASSWORD})).raise_for_status()
        idle = []
        for _ in range(50):
            t = time.perf_counter()
            (await http.get("/health")).raise_for_status()
            idle.append(time.perf_counter() - t)
            await asyncio.sleep(0.02)
    steps = []
    for concurrency in CONCURRENCY:
        step = await login_step(gateway, login_ids, concurrency, pids)
        steps.append(step)
        health_p99 = pct(step.health, 0.99) if step.health else float("nan")
        print(f"  c={concurrency:<3} {step.rate:6.2f} logins/s  p50 {statistics.median(step.latencies) * 1000:6.0f} ms"
              f"  /health p99 {health_p99 * 1000:6.1f} ms  lifecycle-api CPU {step.cpu_s / step.elapsed:4.2f} cores"
              f"  statuses {step.statuses}", flush=True)
    return {"steps": steps, "stored_params": stored_params, "idle_health_p99": pct(idle, 0.99),
            "idle_health_p50": statistics.median(idle)}


# -- (b) sweep ---------------------------------------------------------------------------------------
def account_docs(count: int, due_percent: float, as_of: datetime, days: Any, hash_: str) -> tuple[list[dict[str, Any]], int]:
    """``count`` account documents shaped as the repository writes them; ``due_percent`` due at ``as_of``.

    Not-due accounts last logged in 0–209 days before ``as_of`` with every stage up to today already
    applied (what the daily sweeps leave behind: warned, locked), so their next stage lies in the future.
    Due accounts last logged in 120–214 days before ``as_of`` with only the stage before the highest due
    one applied, so the sweep applies warning 1, warning 2, lock or purge. Accounts sort randomly by id.
    """
    from kagi_lifecycle.adapters.repository import _to_doc
    from kagi_lifecycle.domain import ladder
    from kagi_lifecycle.domain.accounts import Account

    rng = random.Random(20261122)
    today = ladder.japan_date(as_of)
    due_every = round(100 / due_percent) if due_percent > 0 else 0
    docs, due = [], 0
    for i in range(count):
        is_due = due_every > 0 and i % due_every == 0
        age = rng.randint(120, 214) if is_due else rng.randint(0, 209)
        last_login = as_of - timedelta(days=age, hours=rng.randint(1, 20))
        plan = ladder.ladder_for(ladder.japan_date(last_login), days)
        highest = ladder.due_stage(plan, None, today)
        if is_due:
            assert highest is not None
            done = None if highest == "warning1" else ladder.STAGES[ladder.STAGES.index(highest) - 1]
        else:
            done = highest
        upcoming = ladder.next_stage(plan, done)
        status = "locked" if done in ("lock", "purge") else "active"
        issued = last_login - timedelta(days=rng.randint(1, 900))
        account = Account(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            login_id=f"sweep-{i:07d}@bench.example.jp", email=f"sweep-{i:07d}@bench.example.jp",
            password_hash=hash_, roles=["owner"], status=status,
            lock_reason="inactivity" if status == "locked" else None, issued_at=issued, last_login_at=last_login,
            password_changed_at=issued, locked_at=as_of - timedelta(days=1) if status == "locked" else None,
            ladder_stage=done, next_stage=upcoming.stage if upcoming else None,
            next_stage_at=upcoming.due_at if upcoming else None)
        if is_due:
            assert upcoming is not None and upcoming.due_at <= as_of
            due += 1
        else:
            assert upcoming is None or upcoming.due_at > as_of
        docs.append(_to_doc(account))
    return docs, due


async def sweep(settings: Any) -> dict[str, Any]:
    from pymongo.errors import BulkWriteError

    from kagi_lifecycle.adapters.passwords import Passwords
    from kagi_lifecycle.bootstrap import bootstrap
    from kagi_lifecycle.service.sweep import parse_as_of
    from kagi_shared.mongo import OUTBOX, Store, make_client

    client = make_client(settings)
    db_name = f"bench_sweep_{uuid.uuid4().hex[:6]}"
    store = Store(client, db_name)
    try:
        lc = bootstrap(settings, store)
        await lc.start()  # indexes (login_id unique, next_stage_at) and the one-time backfill, on an empty database
        as_of = parse_as_of("2026-11-24").astimezone(UTC)  # a Tuesday's 07:00 JST sweep
        hash_ = await Passwords(settings.security).hash(PASSWORD)
        t = time.perf_counter()
        docs, due = account_docs(SWEEP_ACCOUNTS, DUE_PERCENT, as_of, lc.sweeps.days, hash_)
        build_s = time.perf_counter() - t
        earliest = min(d["next_stage_at"] for d in docs if d["next_stage_at"] is not None)
        t = time.perf_counter()
        retried = 0
        for start in range(0, len(docs), 1000):
            try:
                await lc.accounts.collection.insert_many(docs[start:start + 1000], ordered=False)
            except BulkWriteError as exc:  # a retried write whose first attempt had landed: E11000 only
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise RuntimeError(f"insert failed: {str(exc.details)[:300]}") from None
                retried += len(exc.details.get("writeErrors", []))
        insert_s = time.perf_counter() - t
        del docs
        stored = await lc.accounts.collection.estimated_document_count()
        print(f"  {stored} accounts stored in {insert_s:.0f} s ({due} due; {retried} rows of retried batches "
              "were already there)", flush=True)
        # 0 due: the moment just before the earliest scheduled stage (nothing is due yet).
        before = earliest - timedelta(seconds=1)
        t = time.perf_counter()
        zero = await lc.sweeps.sweep(before)
        zero_s = time.perf_counter() - t
        print(f"  0 due: {zero_s * 1000:.1f} ms (examined {zero.examined})", flush=True)
        t = time.perf_counter()
        one = await lc.sweeps.sweep(as_of)
        one_s = time.perf_counter() - t
        print(f"  {DUE_PERCENT:g} % due: {one_s:.1f} s (examined {one.examined}, applied {one.applied})", flush=True)
        t = time.perf_counter()
        again = await lc.sweeps.sweep(as_of)  # the same moment again: everything was applied, nothing is due
        again_s = time.perf_counter() - t
        print(f"  same moment again: {again_s * 1000:.1f} ms (examined {again.examined})", flush=True)
        outbox = await store.db[OUTBOX].count_documents({})
        return {"accounts": stored, "due": due, "as_of": as_of, "zero_at": before,
                "zero_s": zero_s, "zero_examined": zero.examined, "one_s": one_s, "one_examined": one.examined,
                "applied": dict(one.applied), "again_s": again_s, "again_examined": again.examined,
                "outbox_rows": outbox, "insert_s": insert_s, "build_s": build_s, "ratio": zero_s / one_s,
                "again_ratio": again_s / one_s}
    finally:
        await client.drop_database(db_name)
        await client.close()


# -- report ------------------------------------------------------------------------------------------
def section(login: dict[str, Any], sw: dict[str, Any], argon: dict[str, int]) -> str:
    cores = os.cpu_count() or 1
    rows = []
    for s in login["steps"]:
        per_core = s.rate / cores
        per_cpu_s = s.ok / s.cpu_s if s.cpu_s else float("nan")
        hp99 = pct(s.health, 0.99) if s.health else float("nan")
        rows.append(f"| {s.concurrency} | {s.rate:.2f} | {per_core:.2f} | {per_cpu_s:.2f} | "
                    f"{per_core / KEYCLOAK_PER_VCPU:.2f} | {per_cpu_s / KEYCLOAK_PER_VCPU:.2f} | "
                    f"{statistics.median(s.latencies) * 1000:.0f} | {pct(s.latencies, 0.99) * 1000:.0f} | "
                    f"{s.cpu_s / s.elapsed:.2f} | {s.gateway_cpu_s / s.elapsed:.2f} | "
                    f"{statistics.median(s.health) * 1000:.1f} | {hp99 * 1000:.1f} | "
                    f"{'yes' if hp99 < HEALTH_TARGET_S else 'no'} | {s.statuses} |")
    best = max(login["steps"], key=lambda s: s.rate)
    best_cpu = best.ok / best.cpu_s if best.cpu_s else float("nan")
    applied = ", ".join(f"{k} {v}" for k, v in sw["applied"].items())
    return f"""# {HEADING}

Written by `python -m tests.bench.lifecycle` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}.
Embedded servers on loopback; the machine is shared, so absolute numbers are noisy — ratios are what to compare.

## Password logins through the gateway (production argon2id)

argon2id parameters: defaults of `SecuritySettings` (t={argon['t']}, m={argon['m']} KiB, p={argon['p']}); the stored
hash reads `{login['stored_params']}`. Processes: lifecycle-api and gateway (plus broker, database, SMTP sink);
gateway readiness checked by `/health`. Closed loop, {STEP_S:.0f} s per concurrency, one account per client;
a probe asks the gateway's `/health` every 100 ms during the load (idle before the load: p50
{login['idle_health_p50'] * 1000:.1f} ms, p99 {login['idle_health_p99'] * 1000:.1f} ms). The gateway's login limit per
address was raised for the run (all clients are 127.0.0.1). Per core = logins/s ÷ {cores} cores; per CPU-second =
successful logins ÷ CPU seconds used by lifecycle-api (user + system, all threads) in the same window.
Anchor: Keycloak sizes 15 password logins/s per vCPU.

| clients | logins/s | per core | per lifecycle-api CPU-s | ratio to anchor (per core) | ratio to anchor (per CPU-s) | p50 ms | p99 ms | lifecycle-api cores | gateway cores | /health p50 ms | /health p99 ms | p99 < 50 ms | statuses |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Best: **{best.rate:.2f} logins/s** with {best.concurrency} clients = {best.rate / cores:.2f} per core
(**{best.rate / cores / KEYCLOAK_PER_VCPU:.2f}×** the anchor), {best_cpu:.2f} per lifecycle-api CPU-second
(**{best_cpu / KEYCLOAK_PER_VCPU:.2f}×** the anchor).

## Inactivity sweep: cost grows with due accounts, not with all accounts

{sw['accounts']:,} accounts inserted directly (`insert_many`, 1,000 per call, {sw['insert_s']:.0f} s; documents from
the repository's `_to_doc`, ladder fields from `kagi_lifecycle.domain.ladder`), a dedicated database dropped afterwards.
{sw['due']:,} ({DUE_PERCENT:g} %) due at the sweep of {sw['as_of'].isoformat()}; the rest last logged in 0–209 days
earlier with every stage up to that day already applied. `SweepService.sweep` timed in-process (one transaction per due
account: re-read, stage, event, mail request in the outbox).

| sweep | examined | time | ratio to the {DUE_PERCENT:g} %-due sweep | target |
|---|---|---|---|---|
| {DUE_PERCENT:g} % due ({applied}) | {sw['one_examined']:,} | {sw['one_s']:.2f} s | 1 | |
| 0 due (just before the earliest scheduled stage) | {sw['zero_examined']} | {sw['zero_s'] * 1000:.1f} ms | **{sw['ratio']:.5f}** | < 0.01 |
| 0 due (the same moment again, after the {DUE_PERCENT:g} % sweep) | {sw['again_examined']} | {sw['again_s'] * 1000:.1f} ms | {sw['again_ratio']:.5f} | < 0.01 |

Per due account: {sw['one_s'] / max(sw['one_examined'], 1) * 1000:.1f} ms; the {DUE_PERCENT:g} % sweep left
{sw['outbox_rows']:,} outbox rows (events and mail requests) for the relay.
"""


def main() -> None:
    configure_env()
    from kagi_shared.logging import configure_logging

    configure_logging("bench", "WARNING")
    argon = production_argon2_env()
    os.environ["KAGI_MONGO_DB_PREFIX"] = f"bench{uuid.uuid4().hex[:6]}"
    from kagi_cli.main import system_specs
    from kagi_local.infra import Infra
    from kagi_local.processes import ProcessSpec
    from kagi_shared.mongo import database_name
    from kagi_shared.settings import get_settings

    settings = get_settings()
    assert settings.security.argon2_memory_kib == argon["m"] and settings.security.argon2_time_cost == argon["t"]
    infra = Infra(settings)
    wanted = {"lifecycle-api", "gateway"}
    specs = []
    for spec in system_specs(settings):
        if spec.name == "gateway":  # /ready wants every service; this run starts only lifecycle-api
            spec = ProcessSpec(spec.name, spec.argv, spec.port, {**spec.env, "KAGI_EDGE_RATE_LOGIN_PER_IP": "1000000"})
        if spec.name in wanted:
            specs.append(spec)
    print("starting embedded servers, lifecycle-api and gateway …", flush=True)
    try:
        infra.up()
        infra.up(specs)
        with httpx.Client(timeout=5) as http:
            http.get(f"http://127.0.0.1:{settings.ports.gateway}/health").raise_for_status()
        pids = {name: pid for name in wanted if (pid := infra.manager.pid(name)) is not None}
        print(f"logins (production argon2id t={argon['t']} m={argon['m']} p={argon['p']}) …", flush=True)
        login = asyncio.run(logins(settings, pids))
        infra.down(specs)
        print(f"sweep over {SWEEP_ACCOUNTS} accounts …", flush=True)
        sw = asyncio.run(sweep(settings))
        print(f"  ratio 0-due / {DUE_PERCENT:g}%-due = {sw['ratio']:.5f} (target < 0.01)")

        async def drop() -> None:
            from kagi_shared.mongo import make_client

            client = make_client(settings)
            await client.drop_database(database_name(settings, "lifecycle"))
            await client.close()

        asyncio.run(drop())
    finally:
        infra.down(specs)
        infra.down()
    write_section(section(login, sw, argon))
    print(f"wrote the '{HEADING}' section of {RESULTS}")


if __name__ == "__main__":
    main()
