"""Refresh tokens rotate, a reused one ends the session family, and logout ends access at once."""

from __future__ import annotations

import httpx

from kagi_shared.settings import Settings
from tests.e2e.conftest import create_user


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
