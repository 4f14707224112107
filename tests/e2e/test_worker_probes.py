"""Every running worker answers the probes Kubernetes sends it (deploy/k8s/base/*-worker.yaml)."""

from __future__ import annotations

import asyncio

import httpx

from kagi_shared.settings import Settings

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
