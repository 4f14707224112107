"""Every running worker answers the probes Kubernetes sends it (deploy/k8s/base/*-worker.yaml)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from kagi_shared.events import new_envelope
from kagi_shared.events.audit import AuditRecorded
from kagi_shared.kafka import make_producer, publish
from kagi_shared.settings import Settings
from kagi_shared.topics import AUDIT_EVENTS
from tests.drills.invariants import consumer_view, lags, topic_sizes

WORKERS = {"lifecycle": 1, "invite": 2, "permissions": 3, "notify": 4, "audit": 5}


async def test_every_worker_is_alive_and_ready_on_its_probe_port(system: str, settings: Settings) -> None:
    base = settings.ports.worker_metrics_base
    async with httpx.AsyncClient(timeout=5) as http:
        for service, offset in WORKERS.items():
            url = f"http://127.0.0.1:{base + offset}"
            for _ in range(300):  # a worker binds its probe port and joins its group a moment after it starts
                try:
                    if (await http.get(f"{url}/ready")).status_code == 200:
                        break
                except httpx.ConnectError:
                    pass  # not listening yet (a busy machine starts processes slowly)
                await asyncio.sleep(0.1)
            assert (await http.get(f"{url}/ready")).status_code == 200, service
            assert (await http.get(f"{url}/health")).json() == {"status": "ok"}, service
            assert "kagi_" in (await http.get(f"{url}/metrics")).text, service


async def test_a_worker_reports_its_own_consumer_position_as_the_broker_sees_it(system: str,
                                                                                settings: Settings) -> None:
    """After the audit worker has worked off new events, its own view (read, committed, in flight) agrees with the
    broker: the drills read it to tell a consumer that stopped fetching from one whose commits stopped."""
    producer = make_producer(settings, "probe-test")
    await producer.start()
    try:
        for i in range(5):
            await publish(producer, AUDIT_EVENTS.name, new_envelope(AuditRecorded(
                actor_id="acct-probe", actor_login_id="probe@example.jp", roles=["operator"],
                action="GET /api/v1/operator/companies", target="/api/v1/operator/companies", status=200,
                outcome="success", ip="127.0.0.1", request_id=f"probe-{i}", at=datetime.now(UTC)),
                source="tests", subject="acct-probe"))
    finally:
        await producer.stop()
    view: dict[str, float] = {}
    end = -1
    for _ in range(240):  # the audit worker may first work off what earlier tiers published
        end = (await topic_sizes(settings, [AUDIT_EVENTS.name]))[AUDIT_EVENTS.name]
        found = await consumer_view(settings, f"kagi-audit {AUDIT_EVENTS.name}:0")
        view = found if isinstance(found, dict) else {}
        if view.get("committed") == end:
            break
        await asyncio.sleep(0.5)
    assert view.get("committed") == end, (view, end)
    assert view["read"] == end - 1, (view, end)
    assert view["in_flight"] == 0, view
    assert not (await lags(settings)).get(f"kagi-audit {AUDIT_EVENTS.name}:0"), "the broker agrees"
