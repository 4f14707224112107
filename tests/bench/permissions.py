"""Permissions benchmark (issue 5): a batch of accepted requests → grants on the topics → acks processed.

``python -m tests.bench.permissions`` — replaces only the ``# Permissions benchmark`` section of
``tests/bench/RESULTS.md``. Figures are reported, never asserted.

Set-up: the embedded servers, permissions-api and permissions-worker as their own processes on a
dedicated database (``KAGI_MONGO_DB_PREFIX``, dropped afterwards). The accepted requests are written
directly with ``insert_many``: ``PermissionRequest`` structs planned by the domain (``rules.plan``,
``rules.accept``, the business calendar's batch and effective dates) and turned into documents by the
repository's ``to_doc`` — the documents ``submit`` + ``accept`` would leave, without 2 × N single
transactions on the slow embedded database. Companies, admins and ID reservations are written alike.

Measured: the operator's batch run (``POST /internal/batches`` on permissions-api, as the gateway calls
it) for the requests' batch date; the worker's relay publishes the grant commands; the target simulator
(``simulate()``, in this process) acknowledges each on ``permissions.acks``; the worker's inbox consumer
applies the acks. Reported: grants published per second (until every grant is on its topic), time until
every request is complete (all acks processed), and the memory peak (VmHWM) of permissions-api (the
batch) and permissions-worker (relay and acks).

Relay: the product's default, tailing the outbox's change stream (goal 4 of issue 21);
``KAGI_OUTBOX_CHANGE_STREAM=false`` measures the polling relay.

Scale: ``KAGI_BENCH_PERMISSIONS_REQUESTS`` (default 10000); ``KAGI_BENCH_PERMISSIONS_TIMEOUT_S`` (3600) bounds
the wait for the acks (what arrived by then is reported); ``KAGI_BENCH_PRINT_EVERY_S`` (15) paces the progress lines;
``KAGI_BENCH_LOG_LEVEL=INFO`` makes the worker log every ack batch (``consumer.batch``: size, seconds) in its log.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.bench import results
from tests.bench.__main__ import configure_env, machine

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "Permissions benchmark"
REQUESTS = int(os.environ.get("KAGI_BENCH_PERMISSIONS_REQUESTS", "10000"))
TIMEOUT_S = float(os.environ.get("KAGI_BENCH_PERMISSIONS_TIMEOUT_S", "3600"))
USERS_PER_COMPANY = 100
PRINT_EVERY_S = float(os.environ.get("KAGI_BENCH_PRINT_EVERY_S", "15"))


def write_section(body: str) -> None:
    results.write_section(HEADING, body)


def proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def permissions_of(i: int) -> dict[str, str | None]:
    """A realistic mix: everyone TAXIS, half JOHS, a tenth LOACUS, 2 per 100 JUJU (limit 5 per company)."""
    perms: dict[str, str | None] = {"TAXIS": ("1010", "1011", "1012")[i % 3]}
    if i % 2 == 0:
        perms["JOHS"] = "J1010"
    if i % 10 == 3:
        perms["LOACUS"] = "02011"
    if i % 50 == 7:
        perms["JUJU"] = "yes"
    return perms


async def prepare(perms: Any, count: int, now: datetime) -> tuple[date, int]:
    """Insert ``count`` accepted new-user requests; returns their batch date and the number of grant commands."""
    from pymongo.errors import BulkWriteError

    from kagi_permissions.adapters.repository import to_doc
    from kagi_permissions.domain import requests as rules
    from kagi_permissions.domain.companies import Admin, Company
    from kagi_permissions.domain.timing import acceptance_date, batch_date, effective_from_batch
    from kagi_permissions.service.requests import jst_today

    repo, calendar = perms.repo, perms.calendar
    submitted_at = now - timedelta(days=1)
    submitted_on = jst_today(submitted_at)
    accepted_on = acceptance_date(calendar, submitted_on, jst_today(now))
    batch = batch_date(calendar, accepted_on)
    companies, admins, user_ids, requests = [], [], [], []
    commands = 0
    for c in range((count + USERS_PER_COMPANY - 1) // USERS_PER_COMPANY):
        company = Company(id=str(uuid.uuid4()), name=f"ベンチ株式会社{c}",
                          roles=["gas_retailer", "consignment_requester"],
                          primary_admin=Admin(name="管理者", email=f"admin{c}@bench{c}.example.jp"),
                          registered_at=now - timedelta(days=30))
        companies.append(to_doc(company))
        admins.append({"_id": company.primary_admin.email, "company_id": company.id})
        for u in range(min(USERS_PER_COMPANY, count - c * USERS_PER_COMPANY)):
            i = c * USERS_PER_COMPANY + u
            user_id = f"user{i:06d}@bench{c}.example.jp"
            after = rules.normalise_after(permissions_of(i))
            assert not rules.permission_errors(after, company.roles, False, False)
            request = rules.PermissionRequest(
                id=str(uuid.uuid4()), company_id=company.id, kind="new", user_id=user_id,
                user_key=rules.user_key(user_id), name_kanji="試験 太郎", name_kana="シケン タロウ",
                filed_by=company.primary_admin.email, submitted_at=submitted_at + timedelta(microseconds=i),
                submitted_on=submitted_on, systems=rules.plan("new", {}, after, submitted_on))
            request.status = rules.initial_status("new", request.systems)
            rules.accept(request, accepted_on, batch)
            for status in request.systems:
                if status.timing == "batch":
                    status.effective_on = effective_from_batch(calendar, batch, status.system)
                    commands += 1
            requests.append(to_doc(request))
            user_ids.append({"_id": request.user_key, "company_id": company.id, "request_id": request.id})
    await repo.companies.insert_many(companies)
    await repo.admins.insert_many(admins)
    for start in range(0, count, 1000):
        for collection, docs in ((repo.user_ids, user_ids), (repo.requests, requests)):
            try:
                await collection.insert_many(docs[start:start + 1000], ordered=False)
            except BulkWriteError as exc:  # a retried write whose first attempt had landed: E11000 only
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise RuntimeError(f"insert failed: {str(exc.details)[:300]}") from None
    assert await repo.requests.count_documents({"status": "accepted"}) == count
    return batch, commands


async def watch(settings: Any, topics: list[str], seen: dict[str, set[str]], latest: dict[str, datetime],
                ready: asyncio.Event, stop: asyncio.Event) -> None:
    """Collect the envelope ids on ``topics`` from the first offset (no consumer group), per topic kind, and the
    time of the newest completion (stamped in the worker's transaction that completed the request)."""
    from aiokafka import TopicPartition

    from kagi_shared.events.envelope import decode_envelope
    from kagi_shared.kafka import make_consumer

    consumer = make_consumer(settings, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions: list[TopicPartition] = []
        for topic in topics:
            while not consumer.partitions_for_topic(topic):
                await consumer.topics()
                await asyncio.sleep(0.1)
            partitions += [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ready.set()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                if tp.topic.endswith(".events"):
                    for e in map(decode_envelope, (r.value for r in records)):
                        if e.type == "kagi.permissions.request_completed":
                            seen["completed"].add(e.subject)
                            latest["completed"] = max(latest.get("completed", e.time), e.time)
                    continue
                kind = "acks" if tp.topic.endswith("acks") else "grants"
                seen[kind].update(decode_envelope(r.value).id for r in records)
    finally:
        await consumer.stop()


async def run(settings: Any, infra: Any) -> dict[str, Any]:
    from kagi_permissions.bootstrap import bootstrap
    from kagi_permissions.devtools.target_simulator import FailSwitch, simulate
    from kagi_shared.events.envelope import decode_envelope
    from kagi_shared.kafka import ensure_topics, read_topic
    from kagi_shared.mongo import Store, database_name, make_client
    from kagi_shared.topics import GRANT_TOPICS, PERMISSIONS_ACKS, PERMISSIONS_EVENTS

    db_name = database_name(settings, "permissions")
    client = make_client(settings)
    store = Store(client, db_name)
    perms = bootstrap(settings, store)
    await perms.start()
    now = datetime.now(UTC)
    t = time.perf_counter()
    batch, expected = await prepare(perms, REQUESTS, now)
    prepare_s = time.perf_counter() - t
    print(f"  {REQUESTS} accepted requests inserted in {prepare_s:.1f} s; batch date {batch}, {expected} grants",
          flush=True)

    await ensure_topics(settings)
    grant_topics = [g.name for g in GRANT_TOPICS]
    seen: dict[str, set[str]] = {"grants": set(), "acks": set(), "completed": set()}
    latest: dict[str, datetime] = {}
    watching, stop_watch = asyncio.Event(), asyncio.Event()
    watcher = asyncio.create_task(watch(settings, [*grant_topics, PERMISSIONS_ACKS.name, PERMISSIONS_EVENTS.name],
                                        seen, latest, watching, stop_watch))
    await asyncio.wait_for(watching.wait(), 60)
    pids = {name: infra.manager.pid(name) for name in ("permissions-api", "permissions-worker")}
    rss_before = {name: proc_kib(pid, "VmRSS") for name, pid in pids.items()}
    hwm_before = {name: proc_kib(pid, "VmHWM") for name, pid in pids.items()}

    stop = asyncio.Event()
    simulator = asyncio.create_task(simulate(settings, stop, FailSwitch(), group_id=f"bench-sim-{uuid.uuid4().hex}"))
    headers = {"x-internal-token": settings.security.internal_token, "x-kagi-account-id": "bench-operator",
               "x-kagi-login-id": "operator@kagi.example.jp", "x-kagi-roles": "operator"}
    timeline: dict[str, float] = {}
    t0, t0_wall = time.perf_counter(), datetime.now(UTC)

    async def batch_call() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=settings.service_url("permissions"), timeout=3600) as http:
            reply = await http.post("/internal/batches", json={"batchDate": batch.isoformat()}, headers=headers)
            reply.raise_for_status()
            timeline["batch"] = time.perf_counter() - t0
            answer: dict[str, Any] = reply.json()
            return answer

    batch_task = asyncio.create_task(batch_call())
    deadline = time.monotonic() + TIMEOUT_S  # generous: a busy machine is slow, not broken
    complete = 0
    last_print = last_check = time.perf_counter()
    requests = perms.repo.requests
    loads: list[float] = []
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        loads.append(os.getloadavg()[0])
        if batch_task.done() and batch_task.exception():
            raise batch_task.exception()  # type: ignore[misc]
        if "grants" not in timeline:
            published = len(seen["grants"])
            if published >= expected:
                timeline["grants"] = time.perf_counter() - t0
        else:
            published = expected
        # The database is asked only once every request's completion is on the events topic (or every 30 s): any
        # query on the requests' status reads every matching entry on the embedded database, even with a limit of 1
        # (0.3 s at 5,000 in progress), and it serves one command at a time, so polling it every 0.5 s took most of
        # the database from the worker it measures. The time is the last completion's, stamped in its transaction.
        all_seen = len(seen["completed"]) >= REQUESTS
        if "batch" in timeline and (all_seen or time.perf_counter() - last_check > 30) and \
                not await requests.count_documents({"status": {"$in": ["accepted", "in_progress"]}}, limit=1):
            timeline["acks"] = ((latest["completed"] - t0_wall).total_seconds() if all_seen
                                else time.perf_counter() - t0)
            complete = await requests.count_documents({"status": "complete"})
            break
        if time.perf_counter() - last_check > 30:
            last_check = time.perf_counter()
        if time.perf_counter() - last_print > PRINT_EVERY_S:
            last_print = time.perf_counter()
            print(f"  t={time.perf_counter() - t0:6.0f} s  grants on topics {published}/{expected}  "
                  f"acks on the topic {len(seen['acks'])}  completions relayed {len(seen['completed'])}/{REQUESTS}  "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    if "acks" not in timeline:
        complete = await requests.count_documents({"status": "complete"})
    answer = await batch_task if batch_task.done() else {}
    acks_on_topic = len(seen["acks"])
    hwm = {name: proc_kib(pid, "VmHWM") for name, pid in pids.items()}
    stop.set()
    answered = await simulator
    stop_watch.set()
    await watcher
    grant_records = 0
    command_ids: set[str] = set()
    for topic in grant_topics:
        records = await read_topic(settings, topic, timeout_s=120)
        grant_records += len(records)
        command_ids.update(decode_envelope(r.value).id for r in records)
    failed = await requests.count_documents({"systems.state": "failed"})
    await client.drop_database(db_name)
    await client.close()
    relay = "tailing the outbox's change stream" if settings.outbox.change_stream else "polling the outbox"
    return {"requests": REQUESTS, "relay": relay, "expected": expected, "batch_date": batch, "prepare_s": prepare_s,
            "answer": answer, "timeline": timeline, "complete": complete, "grant_records": grant_records, "distinct_commands": len(command_ids),
            "acks_on_topic": acks_on_topic, "answered": answered, "failed": failed,
            "loads": loads or [os.getloadavg()[0]], "rss_before": rss_before, "hwm_before": hwm_before, "hwm": hwm,
            "bench_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def section(r: dict[str, Any]) -> str:
    tl = r["timeline"]
    n, grants = r["requests"], r["expected"]
    grants_s = tl.get("grants")
    acks_s = tl.get("acks")
    rate = f"{grants / grants_s:.0f} grants/s" if grants_s else "not all published"
    done = f"{acks_s:.1f} s" if acks_s else f"not reached ({r['complete']:,} of {n:,} complete)"
    ack_rate = f"{grants / (acks_s - grants_s):.0f}" if acks_s and grants_s and acks_s > grants_s else "n/a"
    mib = {k: v / 1024 for k, v in r["hwm"].items()}
    grow = {k: (r["hwm"][k] - r["rss_before"][k]) / 1024 for k in r["hwm"]}
    return f"""# {HEADING}

Written by `python -m tests.bench.permissions` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}.
Embedded servers on loopback; permissions-api and permissions-worker as their own processes on a dedicated database
(dropped afterwards); the target simulator (`simulate()`, acknowledging every command as applied) in the benchmark
process. The machine is shared, so absolute numbers are noisy.

{n:,} accepted new-user requests (TAXIS for all, JOHS for half, LOACUS for a tenth, JUJU for 2 %, plus the automatic
info-sharing site) = **{grants:,} grant commands**, written directly in the repository's document shape
({r['prepare_s']:.0f} s with `insert_many`), then the operator's batch run for {r['batch_date']} through
permissions-api (`POST /internal/batches`: {r['answer'].get('requests', '?')} requests,
{r['answer'].get('commands', '?')} commands, answered after {tl.get('batch', float('nan')):.1f} s — the outbox rows are
committed then, in one transaction per 200 requests with the request updates in one bulk write); the worker's relay
publishes them ({r['relay']}: `KAGI_OUTBOX_CHANGE_STREAM={str(r['relay'].startswith('tailing')).lower()}` in this run;
tailing is the product's default); the simulator sends the acks of one
fetch together; the worker's inbox consumer takes the acks up to 200 at a time (faust `take_events`, 0.2 s) and
applies each batch in one transaction (`InboxConsumer.process_many`: one inbox `insert_many`, the requests and current
grants read in one query each, request and grant writes in bulk, events and registration mails in the outbox).

Load average (1 min) while measuring: {min(r['loads']):.1f} to {max(r['loads']):.1f}, mean
{sum(r['loads']) / len(r['loads']):.1f}, on {os.cpu_count()} cores shared with other work — figures from a loaded
run are lower bounds.

| measure | value |
|---|---|
| batch run (commands committed to the outbox) | {tl.get('batch', float('nan')):.1f} s ({n / tl['batch'] if tl.get('batch') else float('nan'):.0f} requests/s) |
| every grant on its topic | {grants_s if grants_s else float('nan'):.1f} s → **{rate}** |
| every ack processed (all {n:,} requests 処理完了) | **{done}** from the start of the batch |
| acks processed per second, whole run (grants / time to all complete) | {f"{grants / acks_s:.0f}" if acks_s else "n/a"} acks/s |
| ack processing after the last grant was published | {ack_rate} acks/s |
| grants on the topics (read back with `read_topic`) | {r['grant_records']:,} records ({r['distinct_commands']:,} distinct commands) of {grants:,} expected |
| acks sent by the simulator / on `permissions.acks` | {r['answered']:,} / {r['acks_on_topic']:,} |
| systems left failed | {r['failed']} |
| memory peak permissions-api (VmHWM; RSS before the batch) | **{mib.get('permissions-api', 0):.0f} MiB** ({r['rss_before'].get('permissions-api', 0) / 1024:.0f} MiB, +{grow.get('permissions-api', 0):.0f} MiB) |
| memory peak permissions-worker (VmHWM; RSS before the batch) | **{mib.get('permissions-worker', 0):.0f} MiB** ({r['rss_before'].get('permissions-worker', 0) / 1024:.0f} MiB, +{grow.get('permissions-worker', 0):.0f} MiB) |
| benchmark process (simulator, watcher, data preparation), ru_maxrss | {r['bench_maxrss_kib'] / 1024:.0f} MiB |

Ratio: time to process every ack / time to publish every grant = {f"{acks_s / grants_s:.1f}" if acks_s and grants_s else "n/a"}.
"""


def main() -> None:
    configure_env()
    os.environ["KAGI_LOG_LEVEL"] = os.environ.get("KAGI_BENCH_LOG_LEVEL", "WARNING")  # INFO: the worker's batches
    from kagi_shared.logging import configure_logging

    configure_logging("bench", "WARNING")  # the in-process simulator logs every ack at INFO
    os.environ["KAGI_MONGO_DB_PREFIX"] = f"bench{uuid.uuid4().hex[:6]}"
    from kagi_cli.main import system_specs
    from kagi_local.infra import Infra
    from kagi_shared.settings import get_settings

    settings = get_settings()
    infra = Infra(settings)
    specs = [s for s in system_specs(settings) if s.name in ("permissions-api", "permissions-worker")]
    print("starting embedded servers, permissions-api and permissions-worker …", flush=True)
    try:
        infra.up()
        infra.up(specs)
        print(f"batch of {REQUESTS} accepted requests …", flush=True)
        result = asyncio.run(run(settings, infra))
    finally:
        infra.down(specs)
        infra.down()
    tl = result["timeline"]
    print(f"  grants {result['expected']} on topics after {tl.get('grants', float('nan')):.1f} s; "
          f"all acks processed after {tl.get('acks', float('nan')):.1f} s; "
          f"VmHWM api {result['hwm'].get('permissions-api', 0) / 1024:.0f} MiB, "
          f"worker {result['hwm'].get('permissions-worker', 0) / 1024:.0f} MiB")
    write_section(section(result))
    print(f"wrote the '{HEADING}' section of {RESULTS}")


if __name__ == "__main__":
    main()
