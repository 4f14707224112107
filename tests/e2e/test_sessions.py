"""Refresh tokens rotate, a reused one ends the session family, and logout ends access at once."""

from __future__ import annotations

import httpx
import jwt
import pytest

from kagi_shared.settings import Settings, get_settings
from tests.e2e.conftest import create_user
from tests.support import client_from, gateway_app


async def test_refresh_rotates_and_a_reused_token_is_refused(settings: Settings, gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    credentials = {"loginId": user.login_id, "password": user.password}
    login = (await gateway.post("/api/v1/auth/login", json=credentials)).json()
    first = login["refreshToken"]

    refreshed = await gateway.post("/api/v1/auth/refresh", json={"refreshToken": first})
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()["refreshToken"]
    assert second != first
    me = await gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {refreshed.json()['accessToken']}"})
    assert me.json()["loginId"] == user.login_id

    replayed = await gateway.post("/api/v1/auth/refresh", json={"refreshToken": first})
    assert replayed.status_code == 401 and replayed.json()["code"] == "auth.refresh_invalid"
    # The copy was detected: the rotated token of the same family is revoked too.
    assert (await gateway.post("/api/v1/auth/refresh", json={"refreshToken": second})).status_code == 401
    garbage = await gateway.post("/api/v1/auth/refresh", json={"refreshToken": "not-a-token"})
    assert garbage.json()["code"] == "auth.refresh_invalid"


async def test_logout_ends_access_and_refresh_at_once(settings: Settings, gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    credentials = {"loginId": user.login_id, "password": user.password}
    login = (await gateway.post("/api/v1/auth/login", json=credentials)).json()
    auth = {"Authorization": f"Bearer {login['accessToken']}"}
    assert (await gateway.get("/api/v1/me", headers=auth)).status_code == 200

    out = await gateway.post("/api/v1/auth/logout", headers=auth, json={"refreshToken": login["refreshToken"]})
    assert out.status_code == 204, out.text
    after = await gateway.get("/api/v1/me", headers=auth)
    assert after.status_code == 401 and after.json()["code"] == "auth.session_ended"
    assert (await gateway.get("/api/v1/me", headers=user.auth)).status_code == 401  # every token of the account
    refused = await gateway.post("/api/v1/auth/refresh", json={"refreshToken": login["refreshToken"]})
    assert refused.status_code == 401

    again = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": user.password})
    assert (await gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {again.json()['accessToken']}"})
            ).status_code == 200


async def test_tokens_name_audience_and_key_and_a_rotated_key_still_verifies_its_tokens(
        settings: Settings, gateway: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15 finding 11: no ``aud`` and no ``kid``, so no key could be rotated without logging everyone out."""
    user = await create_user(settings, gateway, ["owner"])
    header = jwt.get_unverified_header(user.token)
    claims = jwt.decode(user.token, options={"verify_signature": False})
    assert claims["aud"] == "kagi-api" and header["kid"] and settings.security.jwt_secret not in header["kid"]
    # Same key, no audience: a token minted for something else is refused.
    foreign = jwt.encode({k: v for k, v in claims.items() if k != "aud"}, settings.security.jwt_secret,
                         algorithm="HS256", headers={"kid": header["kid"]})
    refused = await gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {foreign}"})
    assert (refused.status_code, refused.json()["code"]) == (401, "auth.token_invalid")

    old_key = settings.security.jwt_secret
    monkeypatch.setenv("KAGI_SECURITY_JWT_SECRET", "rotated-" + old_key)
    monkeypatch.setenv("KAGI_SECURITY_JWT_PREVIOUS_SECRETS", old_key)
    try:
        # A gateway after the rotation, in front of the running services.
        async with gateway_app() as app, client_from(app) as rotated:
            kept = await rotated.get("/api/v1/me", headers=user.auth)
            assert kept.status_code == 200, kept.text  # signed by the previous key: still good until it expires
            login = await rotated.post("/api/v1/auth/login",
                                       json={"loginId": user.login_id, "password": user.password})
            assert jwt.get_unverified_header(login.json()["accessToken"])["kid"] != header["kid"]
        monkeypatch.setenv("KAGI_SECURITY_JWT_PREVIOUS_SECRETS", "")
        # The gateway restarted once the previous key is retired (it reads settings once).
        async with gateway_app() as retired_app, client_from(retired_app) as retired:
            gone = await retired.get("/api/v1/me", headers=user.auth)
            assert (gone.status_code, gone.json()["code"]) == (401, "auth.token_invalid")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
