"""Reliability drills: the mixed workload (tests/drills/workload.py), a fault injected mid-way, then every
invariant of tests/drills/invariants.py checked against the system's own records.

Every drill runs against the whole system (`system` fixture) and leaves it running and healthy.
`make test` runs them at a small scale with a representative subset of the kill -9 drills; `make drills`
at full scale (KAGI_DRILL_SCALE=full): more actors, longer outages, every service process killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest

from kagi_cli.main import system_specs
from kagi_local.infra import Infra, infra_specs
from kagi_local.processes import ProcessSpec, port_open
from kagi_shared.settings import Settings
from tests.drills.invariants import check_invariants, dlt_sizes
from tests.drills.workload import FULL, Workload

OUTAGE_S = 30 if FULL else 4
SMTP_OUTAGE_S = 60 if FULL else 5
SLOW_S = 30 if FULL else 6

# Full scale (`make drills`): every service's api and worker, and the gateway. `make test` keeps it bounded with
# one api killed together with its worker; the slow-worker drill covers notify's worker there.
KILLS = [("lifecycle-api",), ("lifecycle-worker",), ("invite-api", "invite-worker"), ("permissions-api",),
         ("permissions-worker",), ("notify-api",), ("notify-worker",), ("audit-api",), ("audit-worker",),
         ("gateway",)] if FULL else [("invite-api", "invite-worker")]


@pytest.fixture
async def gateway(system: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system, timeout=30) as client:
        yield client


@pytest.fixture
async def workload(settings: Settings, gateway: httpx.AsyncClient) -> AsyncIterator[Workload]:
    w = Workload(settings, gateway)
    w.dlt_before = await dlt_sizes(settings)
    await w.setup()
    try:
        yield w
    finally:
        await w.close()


def never_unavailable(w: Workload) -> None:
    """Only a worker or the SMTP sink was disturbed: the APIs must not have noticed at all."""
    unavailable = {k: n for k, n in w.statuses.items() if k[1] in (0, 503, 504)}
    assert not unavailable, (unavailable, w.last_failure)


def spec(settings: Settings, name: str) -> ProcessSpec:
    return next(s for s in [*infra_specs(settings), *system_specs(settings)] if s.name == name)


async def stop(settings: Settings, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
    infra = Infra(settings)
    process = spec(settings, name)
    infra.manager.signal(name, sig)
    for _ in range(600):  # gone, and its port released
        if infra.manager.pid(name) is None and (process.port is None or not port_open(process.port)):
            return
        await asyncio.sleep(0.05)


async def start(settings: Settings, name: str) -> None:
    # A worker killed with -9 stays in its consumer group until its session times out, so the new one's
    # join (its readiness) can take longer than a cold start on a busy machine.
    process = dataclasses.replace(spec(settings, name), ready_timeout_s=180)
    await asyncio.to_thread(Infra(settings).up, [process])


async def restart(settings: Settings, name: str, sig: signal.Signals = signal.SIGKILL, down_s: float = 0) -> None:
    """Kill a process of the running system (kill -9 by default), optionally keep it down, start it again."""
    await stop(settings, name, sig)
    await asyncio.sleep(down_s)
    await start(settings, name)


async def start_broker_with_its_topics(settings: Settings) -> None:
    """Bring the embedded broker back as a Kafka cluster comes back: with its topics already there.

    Every process is paused (SIGSTOP) while the empty in-memory broker starts and the catalogue's topics are
    created, then resumed. Otherwise the relays' queued batches race the topic creation: clients auto-create
    the topics with the wrong partition counts, and the embedded broker (Tansu 0.6) then refuses a partition's
    first batch with AlreadyExists for good. With a real cluster, topics and their data survive a restart.
    """
    manager = Infra(settings).manager
    clients = [pid for s in system_specs(settings) if (pid := manager.pid(s.name)) is not None]
    for pid in clients:
        os.killpg(pid, signal.SIGSTOP)
    try:
        await start(settings, "broker")  # ready once the catalogue's topics exist
    finally:
        for pid in clients:
            os.killpg(pid, signal.SIGCONT)


@pytest.mark.parametrize("processes", KILLS, ids=["+".join(k) for k in KILLS])
async def test_process_killed_mid_load(settings: Settings, workload: Workload, processes: tuple[str, ...],
                                       gateway: httpx.AsyncClient) -> None:
    async def kill() -> None:
        for name in processes:
            await stop(settings, name)
            if name.endswith("-api"):
                # The gateway's readiness names the missing service, so a load balancer stops sending it traffic.
                ready = await gateway.get("/ready")
                assert ready.status_code == 503, ready.text
                assert ready.headers["content-type"].startswith("application/problem+json")
                assert ready.json()["code"] == "gateway.not_ready"
                assert ready.json()["services"][name.removesuffix("-api")] is False, ready.text
            await start(settings, name)

    await workload.run(kill)
    if all(p.endswith("-worker") for p in processes):
        never_unavailable(workload)
    await check_invariants(workload)


async def test_smtp_sink_down_then_back(settings: Settings, workload: Workload) -> None:
    await workload.run(lambda: restart(settings, "smtp", signal.SIGTERM, SMTP_OUTAGE_S))
    never_unavailable(workload)
    await check_invariants(workload)


async def test_database_down_answers_503_then_recovers(settings: Settings, workload: Workload,
                                                       gateway: httpx.AsyncClient) -> None:
    """APIs answer 503 problem+json while the database is away; workers pause and resume, losing nothing."""
    async def outage() -> None:
        # Stopped, not killed: SecantusDB acknowledges a commit before a SIGKILL-proof write (measured: 2-48 of
        # ~3,000 acked commits gone after kill -9, none after SIGTERM). A real MongoDB with majority write concern
        # keeps every acknowledged commit through a crash, so a kill here would test the embedded server, not us.
        await stop(settings, "mongo", signal.SIGTERM)
        try:
            for i, user in enumerate(workload.owners):
                reply = await gateway.post("/api/v1/me/step-up", headers=user.auth)
                assert reply.headers["content-type"].startswith("application/problem+json")
                if i == 0 and reply.status_code == 504:
                    # The first calls wait out server selection (3 s); a busy api may pass the gateway's deadline.
                    assert reply.json()["code"] == "service.timeout", reply.text
                    continue
                # Once a call has found the database away, the api's breaker answers every call at once.
                assert (reply.status_code, reply.json()["code"]) == (503, "service.unavailable"), reply.text
                assert "retry-after" in reply.headers
            await asyncio.sleep(OUTAGE_S)
        finally:
            await start(settings, "mongo")

    await workload.run(outage)
    await check_invariants(workload)


async def test_broker_down_then_back(settings: Settings, workload: Workload, gateway: httpx.AsyncClient) -> None:
    """The embedded broker keeps topics in memory: a restart loses them. The drill lets what is in flight
    settle first, stops the broker, sets up and runs a fresh workload through the outage (state commits,
    events wait in the outboxes), then restarts it, re-creating the topics: everything committed meanwhile
    is published once. With a real Kafka cluster acknowledged events are replicated and survive, so nothing
    needs to settle first and consumers resume from their committed offsets."""
    await check_invariants(workload)  # settled: nothing the broker acknowledged is still unconsumed
    await stop(settings, "broker")
    during = Workload(settings, gateway)  # the restarted broker starts empty: so do its dead-letter topics
    try:
        async def outage() -> None:
            try:
                await asyncio.sleep(OUTAGE_S)
            finally:
                await start_broker_with_its_topics(settings)

        await during.setup()
        await during.run(outage, lead_s=0)
        await check_invariants(during)
    finally:
        await during.close()


async def test_slow_notify_worker_catches_up(settings: Settings, workload: Workload) -> None:
    """Throttle the notify worker to ~10 % speed (SIGSTOP 90 ms / SIGCONT 10 ms) for a while: requests are
    unaffected, mails lag, and once the throttle lifts every mail asked for is sent exactly once."""
    pid = Infra(settings).manager.pid("notify-worker")
    assert pid is not None

    async def throttle() -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + SLOW_S
        try:
            while loop.time() < until:
                os.killpg(pid, signal.SIGSTOP)
                await asyncio.sleep(0.09)
                os.killpg(pid, signal.SIGCONT)
                await asyncio.sleep(0.01)
        finally:
            os.killpg(pid, signal.SIGCONT)

    await workload.run(throttle)
    never_unavailable(workload)
    await check_invariants(workload)


async def test_redelivered_events_change_nothing(settings: Settings, workload: Workload) -> None:
    """Duplicate and reorder deliveries on purpose: re-publish the tail of every topic the workload fed,
    reversed. Every consumer is idempotent: no second mail, ledger entry, login or grant."""
    from kagi_shared.events import decode_envelope
    from kagi_shared.kafka import make_producer, read_topic
    from kagi_shared.topics import CATALOGUE

    await workload.run()
    await check_invariants(workload)
    republished: set[str] = set()
    producer = make_producer(settings, "drill-redelivery")
    await producer.start()
    try:
        for topic in [t.name for t in CATALOGUE]:
            tail = (await read_topic(settings, topic))[-40:]
            for record in reversed(tail):
                await producer.send_and_wait(topic, record.value, key=record.key, headers=list(record.headers))
            republished |= {decode_envelope(r.value).id for r in tail}
    finally:
        await producer.stop()
    await check_invariants(workload, republished=republished)
