"""An access token past its expiry is refused with its own error code, in the verifier and at the gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kagi_gateway.tokens import issue_token, read_claims
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import get_settings
from tests.support import client_from, gateway_app, no_services

OWNER = Caller(account_id="acct-owner", login_id="owner@example.jp", email="owner@example.jp", roles=("owner",))


def expired_token() -> str:
    security = get_settings().security
    # Issued one full lifetime and a minute ago: expired a minute ago, with no leeway to hide behind.
    issued = datetime.now(UTC) - timedelta(seconds=security.access_token_ttl_s + 60)
    token, expires = issue_token(OWNER, security, now=issued)
    assert expires < datetime.now(UTC)
    return token


def test_the_verifier_refuses_an_expired_token_as_expired() -> None:
    security = get_settings().security
    with pytest.raises(Problem) as refused:
        read_claims(expired_token(), security)
    assert (refused.value.status, refused.value.code) == (401, "auth.token_expired")
    # The same token within its lifetime is accepted: the refusal is about time, not the signature.
    fresh, _ = issue_token(OWNER, security)
    assert read_claims(fresh, security).caller.account_id == OWNER.account_id


async def test_the_gateway_answers_an_expired_token_with_401_problem_json(monkeypatch: pytest.MonkeyPatch) -> None:
    no_services(monkeypatch)
    async with gateway_app() as app, client_from(app) as client:
        reply = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired_token()}"})
    assert reply.status_code == 401
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["code"] == "auth.token_expired"
    assert reply.json()["status"] == 401
    assert 'error="invalid_token"' in reply.headers["www-authenticate"]
