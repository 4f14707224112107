"""The gateway counts its calls to the services in ``kagi_internal_calls_total`` by method and route template: an
account id or any other value in the path never becomes a label."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from kagi_gateway.services import Services
from kagi_gateway.tokens import issue_token
from kagi_shared import metrics
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import get_settings
from tests.support import client_from, gateway_app, no_services


def calls(method: str, route: str) -> float:
    value = REGISTRY.get_sample_value("kagi_internal_calls_total",
                                      {"service": metrics.process, "method": method, "route": route})
    return value or 0.0


def routes_holding(value: str) -> list[str]:
    return [sample.labels["route"] for family in REGISTRY.collect() if family.name == "kagi_internal_calls"
            for sample in family.samples if value in sample.labels.get("route", "")]


async def test_calls_are_counted_by_route_template(monkeypatch: pytest.MonkeyPatch) -> None:
    no_services(monkeypatch)  # each call fails (503), and is still a call the gateway made
    account_id = f"acct-{uuid.uuid4().hex}"
    caller = Caller(account_id=account_id, login_id="owner@example.jp", roles=("owner",))
    login, session = ("POST", "/internal/sessions"), ("GET", "/internal/accounts/{account_id}/session")
    before = {key: calls(*key) for key in (login, session)}

    async with gateway_app() as app, client_from(app, "133.11.0.1") as client:
        token, _ = issue_token(caller, get_settings().security)
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 503  # the session check could not reach lifecycle
        refused = await client.post("/api/v1/auth/login", json={"loginId": "owner@example.jp", "password": "x"})
        assert refused.status_code == 503

    assert {key: calls(*key) - n for key, n in before.items()} == {login: 1, session: 1}
    assert routes_holding(account_id) == []


async def test_a_typed_client_call_is_counted_by_its_template(monkeypatch: pytest.MonkeyPatch) -> None:
    no_services(monkeypatch)
    get_settings.cache_clear()
    services = Services(get_settings())
    company_id = f"co-{uuid.uuid4().hex}"
    before = calls("GET", "/internal/companies/{company_id}")
    try:
        with pytest.raises(Problem):
            await services.permissions.company(Caller(account_id="a", login_id="op@example.jp"), company_id)
    finally:
        await services.close()
    assert calls("GET", "/internal/companies/{company_id}") - before == 1
    assert routes_holding(company_id) == []
