"""The OpenID Provider's routes in process (the services are unreachable here): every route declares its roles,
discovery names only what the provider does, the token endpoint answers in OAuth's own error format, and the login
page opens form-action only to the relying party an authorization request returns to."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from litestar.routes import HTTPRoute
from test_pages import gateway  # type: ignore[import-not-found]

from kagi_gateway.app import create_app
from kagi_gateway.deps import PUBLIC
from kagi_shared.settings import get_settings

OP_PATHS = {"/.well-known/openid-configuration", "/oidc/jwks", "/oidc/token", "/oidc/userinfo", "/oidc/authorize",
            "/oidc/logout"}


def test_every_provider_route_declares_its_roles_and_stays_out_of_the_document() -> None:
    app = create_app()
    seen = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path in OP_PATHS:
            for handler in route.route_handlers:
                if handler.http_methods <= {"HEAD", "OPTIONS"}:
                    continue
                # Public by declaration: the client authenticates with its secret, the person on the login page,
                # the access token is checked by the provider itself.
                assert tuple(handler.opt.get("roles") or ()) == PUBLIC, route.path
                seen.add(route.path)
    assert seen == OP_PATHS
    assert not any(p in OP_PATHS for p in app.openapi_schema.paths or {})


async def test_discovery_names_the_code_flow_with_pkce_only(monkeypatch: pytest.MonkeyPatch) -> None:
    async with gateway(monkeypatch) as client:
        found = (await client.get("/.well-known/openid-configuration")).json()
    assert found["issuer"] == get_settings().brand.portal_url.rstrip("/")  # the portal URL of this run
    assert found["response_types_supported"] == ["code"] and found["code_challenge_methods_supported"] == ["S256"]
    assert found["id_token_signing_alg_values_supported"] == ["RS256"]
    assert found["token_endpoint"] == f"{found['issuer']}/oidc/token"


async def test_the_token_endpoint_answers_oauth_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    async with gateway(monkeypatch) as client:
        wrong_grant = await client.post("/oidc/token", data={"grant_type": "password"})
        assert wrong_grant.status_code == 400 and wrong_grant.json()["error"] == "unsupported_grant_type"
        assert wrong_grant.headers["cache-control"] == "no-store"
        no_client = await client.post("/oidc/token", data={"grant_type": "authorization_code", "code": "x"})
        assert no_client.status_code == 401 and no_client.json()["error"] == "invalid_client"
        missing = await client.post("/oidc/token", auth=("c", "s"), data={"grant_type": "authorization_code"})
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
        no_token = await client.get("/oidc/userinfo")
        assert no_token.status_code == 401 and "invalid_token" in no_token.headers["www-authenticate"]


async def test_the_login_page_opens_form_action_for_an_authorization_only(monkeypatch: pytest.MonkeyPatch) -> None:
    authorize = "/oidc/authorize?client_id=taxis-1&redirect_uri=https%3A%2F%2Ftaxis.example.jp%2Fcb"
    async with gateway(monkeypatch) as client:
        for_rp = await client.get(f"/login?next={quote(authorize, safe='')}")
        plain = await client.get("/login?next=/account")
    assert "form-action 'self' https://taxis.example.jp;" in for_rp.headers["content-security-policy"]
    assert "form-action 'self';" in plain.headers["content-security-policy"]
