"""Kagi as OpenID Provider, checked by a real client: Authlib's OpenID Connect client (the same classes its Starlette
and Flask integrations use) does discovery, Authorization Code + PKCE, ID token validation against the JWKS and
userinfo for a TAXIS client, with every process running. The person's browser is an httpx client that follows the
hosted login page like a person would (cookie, CSRF field, redirects)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.base_client import BaseApp, FrameworkIntegration
from authlib.integrations.base_client.async_app import AsyncOAuth2Mixin
from authlib.integrations.base_client.async_openid import AsyncOpenIDMixin
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc.errors import BadSignatureError

from kagi_shared.settings import Settings
from tests.e2e.conftest import create_user

PASSWORD = "Taxis#e2e-2026-kagi"  # noqa: S105 - a test account
REDIRECT = "https://taxis.example.jp/callback"
AFTER_LOGOUT = "https://taxis.example.jp/bye"


class TargetSystem(AsyncOAuth2Mixin, AsyncOpenIDMixin, BaseApp):  # type: ignore[misc]
    """A relying party as Authlib builds one for a web framework, without the framework."""

    client_cls = AsyncOAuth2Client


@dataclass
class Registered:
    client_id: str
    secret: str


async def register_client(settings: Settings, system: str = "TAXIS") -> Registered:
    """What ``kagi clients create --system TAXIS --redirect-uri …`` does."""
    from kagi_lifecycle.bootstrap import bootstrap

    lifecycle = bootstrap(settings)
    try:
        await lifecycle.start()
        client, secret = await lifecycle.oidc.create_client(system, [REDIRECT], f"{system} e2e",
                                                            [AFTER_LOGOUT])
    finally:
        await lifecycle.close()
    return Registered(client.id, secret)


async def system_user(settings: Settings, taxis: str | None) -> str:
    """An enrolled system user; with ``taxis`` it holds that TAXIS permission (as a completed request leaves it)."""
    from kagi_lifecycle.bootstrap import bootstrap
    from kagi_permissions.bootstrap import bootstrap as permissions_bootstrap
    from kagi_permissions.devtools.demo import seed_company

    login_id = f"sys-{uuid.uuid4().hex[:10]}@partner.example.jp"
    lifecycle = bootstrap(settings)
    try:
        await lifecycle.start()
        await lifecycle.service.create_account(login_id, PASSWORD, ["system_user"])
    finally:
        await lifecycle.close()
    if taxis:
        permissions = permissions_bootstrap(settings)
        try:
            await permissions.start()
            await seed_company(permissions, "oidc-admin@partner.example.jp", login_id)
            await permissions.repo.grants.update_one({"_id": login_id.lower()},
                                                     {"$set": {"permissions.TAXIS": taxis}})
        finally:
            await permissions.close()
    return login_id


def target_system(system: str, registered: Registered) -> TargetSystem:
    return TargetSystem(FrameworkIntegration("kagi"), name="kagi", client_id=registered.client_id,
                        client_secret=registered.secret,
                        server_metadata_url=f"{system}/.well-known/openid-configuration",
                        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256",
                                       "timeout": 15})


async def browser_login(system: str, url: str, login_id: str, password: str,
                        browser: httpx.AsyncClient | None = None) -> httpx.Response:
    """Open the authorization URL, sign in on the hosted login page, follow Kagi's redirects; returns the answer that
    leaves Kagi (a redirect to the client) or the page Kagi shows instead."""
    own = browser is None
    browser = browser or httpx.AsyncClient(timeout=15)
    try:
        answer = await browser.get(url)
        while answer.status_code in (302, 303) and answer.headers["location"].startswith(("/", system)):
            location = answer.headers["location"]
            if urlsplit(location).path == "/login":
                page = await browser.get(httpx.URL(system).join(location))
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
                next_path = re.search(r'name="next" value="([^"]+)"', page.text)
                assert csrf and next_path, page.text
                answer = await browser.post(f"{system}/login", data={
                    "csrf": csrf.group(1), "next": next_path.group(1).replace("&amp;", "&"),
                    "loginId": login_id, "password": password})
                if answer.status_code not in (302, 303):
                    return answer
                continue
            answer = await browser.get(httpx.URL(system).join(location))
        return answer
    finally:
        if own:
            await browser.aclose()


def code_of(answer: httpx.Response, state: str, issuer: str) -> str:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state] and query["iss"] == [issuer]  # RFC 9207
    return query["code"][0]


@pytest.fixture
async def taxis(system: str, settings: Settings) -> AsyncIterator[tuple[TargetSystem, Registered]]:
    registered = await register_client(settings)
    yield target_system(system, registered), registered


async def sign_in(system: str, rp: TargetSystem, login_id: str) -> tuple[dict[str, Any], Any]:
    started = await rp.create_authorization_url(REDIRECT)
    code = code_of(await browser_login(system, started["url"], login_id, PASSWORD), started["state"], system)
    token = await rp.fetch_access_token(redirect_uri=REDIRECT, code=code, code_verifier=started["code_verifier"])
    claims = await rp.parse_id_token(token, nonce=started["nonce"])
    return token, claims


async def test_a_taxis_user_signs_in_to_taxis_through_kagi(system: str, settings: Settings,
                                                           taxis: tuple[TargetSystem, Registered]) -> None:
    rp, registered = taxis
    login_id = await system_user(settings, taxis="1011")
    metadata = await rp.load_server_metadata()
    assert metadata["issuer"] == system and metadata["code_challenge_methods_supported"] == ["S256"]

    token, claims = await sign_in(system, rp, login_id)
    assert claims["aud"] == registered.client_id and claims["iss"] == system
    assert claims["kagi_login_id"] == login_id.lower() and claims["kagi_system"] == "TAXIS"
    assert claims["kagi_permission"] == "1011" and claims["kagi_company_id"]
    assert claims["auth_time"] <= claims["iat"]
    info = await rp.userinfo(token=token)
    assert info["sub"] == claims["sub"] and info["kagi_permission"] == "1011"

    # The code is single use, and a code needs its PKCE verifier.
    started = await rp.create_authorization_url(REDIRECT)
    code = code_of(await browser_login(system, started["url"], login_id, PASSWORD), started["state"], system)
    async with httpx.AsyncClient(timeout=15) as server:
        wrong = await server.post(f"{system}/oidc/token", auth=(registered.client_id, registered.secret), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": "x" * 43})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        again = await server.post(f"{system}/oidc/token", auth=(registered.client_id, registered.secret), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": started["code_verifier"]})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # taken by the failed try
        stranger = await server.post(f"{system}/oidc/token", auth=(registered.client_id, "not-the-secret"), data={
            "grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT, "code_verifier": "x" * 43})
        assert stranger.status_code == 401 and stranger.json()["error"] == "invalid_client"


async def test_an_unregistered_redirect_uri_is_never_followed(system: str,
                                                              taxis: tuple[TargetSystem, Registered]) -> None:
    rp, _ = taxis
    started = await rp.create_authorization_url("https://evil.example.com/cb")
    async with httpx.AsyncClient(timeout=15) as browser:
        answer = await browser.get(started["url"])
    assert answer.status_code == 400 and "evil.example.com" not in answer.headers.get("location", "")
    assert 'data-code="oidc.invalid_client"' in answer.text


async def test_a_user_without_taxis_is_refused_with_a_page(system: str, settings: Settings,
                                                           taxis: tuple[TargetSystem, Registered]) -> None:
    rp, _ = taxis
    login_id = await system_user(settings, taxis=None)
    started = await rp.create_authorization_url(REDIRECT)
    answer = await browser_login(system, started["url"], login_id, PASSWORD)
    assert answer.status_code == 403, answer.text
    assert 'data-code="oidc.no_permission"' in answer.text and "TAXISの権限がない" in answer.text


async def test_a_locked_user_cannot_sign_in_and_its_tokens_stop(system: str, settings: Settings,
                                                               gateway: httpx.AsyncClient,
                                                               taxis: tuple[TargetSystem, Registered]) -> None:
    rp, _ = taxis
    login_id = await system_user(settings, taxis="1010")
    token, claims = await sign_in(system, rp, login_id)
    operator = await create_user(settings, gateway, ["operator"])
    locked = await gateway.post(f"/api/v1/operator/accounts/{claims['sub']}/lock", headers=operator.auth)
    assert locked.status_code == 200, locked.text

    refused = await rp.get(f"{system}/oidc/userinfo", token=token)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    started = await rp.create_authorization_url(REDIRECT)
    answer = await browser_login(system, started["url"], login_id, PASSWORD)
    assert answer.status_code != 303 and "ロック" in answer.text, answer.text


async def test_key_rotation_keeps_issued_tokens_valid(system: str, settings: Settings,
                                                      taxis: tuple[TargetSystem, Registered]) -> None:
    from kagi_lifecycle.bootstrap import bootstrap

    rp, _ = taxis
    login_id = await system_user(settings, taxis="1011")
    token, claims = await sign_in(system, rp, login_id)
    old_kid = (await rp.fetch_jwk_set(force=True))["keys"][0]["kid"]
    lifecycle = bootstrap(settings)
    try:
        await lifecycle.start()
        new = await lifecycle.oidc.rotate_key()
    finally:
        await lifecycle.close()
    published = {k["kid"] for k in (await rp.fetch_jwk_set(force=True))["keys"]}
    assert {old_kid, new.id} <= published
    assert (await rp.parse_id_token(token, nonce=claims["nonce"]))["sub"] == claims["sub"]
    assert (await rp.userinfo(token=token))["kagi_permission"] == "1011"


async def test_a_forged_access_token_is_refused(system: str, settings: Settings,
                                                taxis: tuple[TargetSystem, Registered]) -> None:
    rp, _ = taxis
    login_id = await system_user(settings, taxis="1011")
    token, _ = await sign_in(system, rp, login_id)
    head, body, signature = token["access_token"].split(".")
    forged = f"{head}.{body}.{signature[:-4]}AAAA"
    refused = await rp.get(f"{system}/oidc/userinfo", token={**token, "access_token": forged})
    assert refused.status_code == 401
    id_as_access = await rp.get(f"{system}/oidc/userinfo", token={**token, "access_token": token["id_token"]})
    assert id_as_access.status_code == 401  # an ID token is no access token
    with pytest.raises(BadSignatureError):
        await rp.parse_id_token({**token, "id_token": ".".join([*token["id_token"].split(".")[:2], signature])},
                                nonce="whatever")


async def test_max_age_and_rp_initiated_logout(system: str, settings: Settings,
                                               taxis: tuple[TargetSystem, Registered]) -> None:
    rp, registered = taxis
    login_id = await system_user(settings, taxis="1011")
    async with httpx.AsyncClient(timeout=15) as browser:
        # prompt=none without a session: back to the client with login_required, no page shown.
        silent = await rp.create_authorization_url(REDIRECT, prompt="none")
        answer = await browser.get(silent["url"])
        assert answer.status_code == 303 and answer.headers["location"].startswith(REDIRECT)
        assert parse_qs(urlsplit(answer.headers["location"]).query)["error"] == ["login_required"]
        started = await rp.create_authorization_url(REDIRECT)
        code_of(await browser_login(system, started["url"], login_id, PASSWORD, browser), started["state"], system)
        # max_age shorter than the time since login asks for the password again.
        await asyncio.sleep(2.2)
        aged = await rp.create_authorization_url(REDIRECT, max_age=1)
        to_login = await browser.get(aged["url"])
        assert to_login.status_code == 303 and to_login.headers["location"].startswith("/login?next=")
        # Signed in: a second client request passes without the login page…
        again = await rp.create_authorization_url(REDIRECT)
        quiet = await browser.get(again["url"])
        code_of(quiet, again["state"], system)
        # …but prompt=login asks for the password again, and the fresh login satisfies it once.
        fresh = await rp.create_authorization_url(REDIRECT, prompt="login")
        to_login = await browser.get(fresh["url"])
        assert to_login.status_code == 303 and to_login.headers["location"].startswith("/login?next=")
        code = code_of(await browser_login(system, fresh["url"], login_id, PASSWORD, browser), fresh["state"],
                       system)
        token = await rp.fetch_access_token(redirect_uri=REDIRECT, code=code, code_verifier=fresh["code_verifier"])
        claims = await rp.parse_id_token(token, nonce=fresh["nonce"])
        assert claims["auth_time"] >= (await rp.parse_id_token(token, nonce=fresh["nonce"]))["iat"] - 5

        # RP-initiated logout: a confirmation page, then back to the registered URI; the tokens stop.
        logout = await rp.create_logout_url(post_logout_redirect_uri=AFTER_LOGOUT, id_token_hint=token["id_token"])
        form = await browser.get(logout["url"])
        assert form.status_code == 200 and "ログアウトしますか" in form.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        done = await browser.post(f"{system}/oidc/logout", data={
            "csrf": csrf.group(1), "id_token_hint": token["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT,
            "state": logout["state"]})
        assert done.status_code == 303 and done.headers["location"] == f"{AFTER_LOGOUT}?state={logout['state']}"
        assert "taxis.example.jp" in done.headers["content-security-policy"]
        assert (await rp.get(f"{system}/oidc/userinfo", token=token)).status_code == 401
        assert registered.client_id == claims["aud"]


async def test_the_target_simulator_logs_a_system_user_in_through_kagi(system: str, settings: Settings) -> None:
    """`make run`'s TAXIS stand-in (kagi_cli.target_login) as relying party: it shows the permission it received."""
    from kagi_cli.target_login import create_app, registered_client

    base = "http://taxis-simulator.example"
    client = await registered_client(settings, base)
    assert (await registered_client(settings, base)) == client  # registered once, kept in the var directory
    login_id = await system_user(settings, taxis="1011")
    transport = httpx.ASGITransport(app=create_app(system, client, base))
    async with httpx.AsyncClient(transport=transport, base_url=base, timeout=15) as simulator:
        started = await simulator.get("/login")
        assert started.status_code == 303 and started.headers["location"].startswith(f"{system}/oidc/authorize?")
        answer = await browser_login(system, started.headers["location"], login_id, PASSWORD)
        assert answer.status_code == 303 and answer.headers["location"].startswith(f"{base}/callback?")
        shown = await simulator.get(answer.headers["location"])
    assert shown.status_code == 200 and "Kagiでログインしました" in shown.text, shown.text
    assert login_id.lower() in shown.text and ">1011<" in shown.text and ">TAXIS<" in shown.text
