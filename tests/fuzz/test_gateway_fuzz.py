"""Schemathesis against the gateway's own OpenAPI, with every process running: no 5xx, every error problem+json.

`make test` runs a bounded number of examples per operation; `make fuzz` runs many more
(KAGI_FUZZ_EXAMPLES). Each case is sent twice: anonymously and with an owner's token.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from kagi_shared.settings import Settings

EXAMPLES = int(os.environ.get("KAGI_FUZZ_EXAMPLES", "15"))


@pytest.fixture(scope="session")
def owner_token(system: str, settings: Settings) -> str:
    login_id, password = "fuzz-owner@example.jp", "Fz#2026-random-pw"
    with httpx.Client(base_url=settings.service_url("lifecycle"),
                      headers={"x-internal-token": settings.security.internal_token}) as lifecycle:
        lifecycle.post("/internal/accounts", json={"loginId": login_id, "password": password, "roles": ["owner"]})
    reply = httpx.post(f"{system}/api/v1/auth/login", json={"loginId": login_id, "password": password})
    reply.raise_for_status()
    return str(reply.json()["accessToken"])


def _header(response: Any, name: str) -> str:
    value = response.headers.get(name) or response.headers.get(name.title()) or ""
    return value[0] if isinstance(value, list) else str(value)  # schemathesis keeps header values as lists


def _check(response: Any, documented: set[str] | None = None) -> None:
    assert response.status_code < 500 or response.status_code == 503, \
        f"{response.status_code} {response.request.method} {response.request.url}: {response.text[:500]}"
    if documented is not None:  # the OpenAPI document lists every status the operation answers
        assert str(response.status_code) in documented, \
            f"undocumented {response.status_code} {response.request.method} {response.request.url} {response.text[:99]}"
    if response.status_code >= 400:
        assert _header(response, "content-type").startswith("application/problem+json"), response.text[:300]
        body = response.json()
        assert body["status"] == response.status_code
        assert isinstance(body.get("code"), str) and body["code"]
        assert body.get("title")


def test_gateway_never_fails_and_always_explains(system: str, owner_token: str) -> None:
    # schemathesis' pytest plugin does not support pytest 9 yet, so hypothesis drives its strategies directly.
    schema = schemathesis.openapi.from_url(f"{system}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            documented = set(case.operation.definition.raw["responses"])
            _check(case.call(base_url=system, timeout=20), documented)
            _check(case.call(base_url=system, headers={"Authorization": f"Bearer {owner_token}"}, timeout=20),
                   documented)

        run()
