"""No request to the gateway or to any service's internal API waits for a worker thread.

Litestar runs a plain-function guard, request hook or dependency in a thread pool on every request. Each such hop
cost the gateway and every API a thread hand-off and a loop wake-up per request (in the system benchmark the
gateway spent a fifth of its samples in the pool), for functions that do no blocking work at all.
"""

from __future__ import annotations

from kagi_cli.compact import create_app as every_service_api
from kagi_gateway.app import create_app as gateway
from kagi_shared.settings import get_settings
from tests.support import thread_hops


def test_no_gateway_route_hands_work_to_a_worker_thread() -> None:
    assert thread_hops(gateway()) == []


def test_no_internal_route_of_any_service_hands_work_to_a_worker_thread() -> None:
    # The compact process mounts every service's own API (its routes, guard and hooks) side by side.
    app = every_service_api(get_settings())
    assert any(route.path.startswith("/permissions/internal/") for route in app.routes)
    assert thread_hops(app) == []
