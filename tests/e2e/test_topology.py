"""The system runs the API processes its topology names: five in split mode, one in compact mode.

Run the end-to-end tests with ``KAGI_TOPOLOGY=compact`` to run them against the compact process; this test makes
sure such a run really went through one process (and a split run through five), not through leftovers."""

from __future__ import annotations

import httpx

from kagi_cli.main import system_specs
from kagi_local.infra import SERVICES
from kagi_local.processes import ProcessManager, port_open
from kagi_shared.service_api import INTERNAL_TOKEN_HEADER
from kagi_shared.settings import Settings

# A route of each service that needs a caller (the gateway's headers naming the person).
CALLER_ROUTES = {"lifecycle": "/internal/me/external-links", "invite": "/internal/users",
                 "permissions": "/internal/me/permissions", "notify": "/internal/preferences",
                 "audit": "/internal/audit"}


async def test_the_running_api_processes_are_the_ones_the_topology_names(system: str, settings: Settings) -> None:
    manager = ProcessManager(settings.var_path)
    per_service = {f"{service}-api": manager.pid(f"{service}-api") for service in SERVICES}
    compact = manager.pid("compact-api")
    apis = [spec.name for spec in system_specs(settings) if spec.name.endswith("-api")]
    if settings.topology == "compact":
        assert apis == ["compact-api"] and compact is not None
        assert set(per_service.values()) == {None}
        assert not any(port_open(getattr(settings.ports, service)) for service in SERVICES)
    else:
        assert apis == list(per_service) and None not in per_service.values()
        assert compact is None and not port_open(settings.ports.compact)
    async with httpx.AsyncClient(timeout=10) as client:
        for service, path in CALLER_ROUTES.items():
            # Every service answers at the address its callers use, behind its own guard, in its own process or
            # not: without the credential the guard refuses; with it, the route itself asks who is calling.
            url = settings.service_url(service) + path
            refused = await client.get(url)
            assert (refused.status_code, refused.json()["code"]) == (401, "internal.unauthenticated"), service
            let_in = await client.get(url, headers={INTERNAL_TOKEN_HEADER: settings.internal_token_for(service)})
            assert (let_in.status_code, let_in.json()["code"]) == (401, "auth.required"), service
