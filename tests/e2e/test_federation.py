"""Kagi as relying party of an external identity provider, end to end: panva's oidc-provider (tools/test-idp, pinned,
started here with node) stands in for LINE. The person's browser is an httpx client with cookies that submits the
pages' forms: SNS連携 after a fresh step-up, login with the linked ID (last login moves), an unknown external ID
refused without creating anything, unlink."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from kagi_shared.settings import Settings
from tests.e2e.conftest import User, code_in, create_user, wait_for_mail
from tests.e2e.forging_idp import Forgery, ForgingIdP

ROOT = Path(__file__).resolve().parents[2]
IDP = ROOT / "tools" / "test-idp"


@pytest.fixture(scope="module")
def line(settings: Settings) -> Iterator[dict[str, str]]:
    provider = next(p for p in json.loads(settings.federation.providers) if p["id"] == "line")
    port = urlsplit(provider["issuer"]).port
    client = {"client_id": provider["clientId"], "client_secret": provider["clientSecret"],
              "redirect_uris": [f"{settings.brand.portal_url}/login/external/line/callback"]}
    log = (settings.var_path / "test-idp.log").open("w")
    process = subprocess.Popen(["node", str(IDP / "idp.mjs"), str(port), json.dumps(client)],  # noqa: S603, S607
                               cwd=IDP, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{provider['issuer']}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (settings.var_path / "test-idp.log").read_text()
            time.sleep(0.2)
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def kagi_login(browser: httpx.AsyncClient, system: str, user: User) -> None:
    page = await browser.get(f"{system}/login")
    done = await browser.post(f"{system}/login", data={"csrf": _csrf(page.text), "next": "/account",
                                                        "loginId": user.login_id, "password": user.password})
    assert done.status_code == 303 and done.headers["location"] == "/account", done.text


async def through_idp(browser: httpx.AsyncClient, answer: httpx.Response, system: str, external_login: str
                      ) -> httpx.Response:
    """Follow redirects and the provider's own login and consent forms until Kagi answers with a page or a
    redirect inside Kagi."""
    url = str(answer.request.url)
    for _ in range(20):
        if answer.status_code in (302, 303):
            url = urljoin(url, answer.headers["location"])
            if url.startswith(system) and "/callback" not in url:
                return answer
            answer = await browser.get(url)
            continue
        if url.startswith(system):
            return answer
        form = re.search(r'<form[^>]*action="([^"]+)"[^>]*method="post">(.*?)</form>', answer.text, re.S)
        assert form, answer.text
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
        if 'name="login"' in form.group(2):
            fields.update(login=external_login, password="any")  # noqa: S106 - the provider's dev login
        url = urljoin(url, unescape(form.group(1)))
        answer = await browser.post(url, data=fields)
    raise AssertionError("the provider's flow did not end")


async def fresh_step_up(browser: httpx.AsyncClient, system: str, settings: Settings, user: User) -> str:
    page = await browser.get(f"{system}/account/external")
    assert page.status_code == 200 and "追加認証が必要です" in page.text
    sent = await browser.post(f"{system}/account/external/step-up", data={"csrf": _csrf(page.text)})
    assert sent.status_code == 200, sent.text
    code = code_in((await wait_for_mail(settings, user.login_id))[-1])
    verified = await browser.post(f"{system}/account/external/step-up/verify",
                                  data={"csrf": _csrf(sent.text), "code": code})
    assert verified.status_code == 200 and "追加認証が完了しました" in verified.text, verified.text
    return verified.text


async def last_login(gateway: httpx.AsyncClient, user: User) -> str | None:
    me = await gateway.get("/api/v1/me", headers=user.auth)
    assert me.status_code == 200, me.text
    return me.json().get("lastLoginAt")


async def test_link_log_in_with_line_and_unlink(system: str, settings: Settings, gateway: httpx.AsyncClient,
                                               browser: httpx.AsyncClient, line: dict[str, str]) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    line_user = f"line-{uuid.uuid4().hex[:8]}"
    await kagi_login(browser, system, owner)
    login_page = await browser.get(f"{system}/login")
    assert "LINEでログイン" in login_page.text

    # SNS連携: refused without a fresh step-up, then linked through the provider.
    page = await browser.get(f"{system}/account/external")
    assert 'data-provider="line"' in page.text and "未連携" in page.text and "連携する</button>" not in page.text
    page_text = await fresh_step_up(browser, system, settings, owner)
    started = await browser.post(f"{system}/account/external/line/link", data={"csrf": _csrf(page_text)})
    assert started.status_code == 303 and started.headers["location"].startswith(line["issuer"])
    assert line["issuer"] in started.headers["content-security-policy"]
    linked = await through_idp(browser, started, system, line_user)
    assert linked.status_code == 200 and "LINEと連携しました" in linked.text, linked.text
    assert "連携済み" in (await browser.get(f"{system}/account/external")).text
    # 利用者一覧 (SNS連携の状況) through the API: its own session needs its own step-up.
    assert (await gateway.post("/api/v1/me/step-up", headers=owner.auth)).status_code == 201
    code = code_in((await wait_for_mail(settings, owner.login_id, count=2))[-1])
    verified = await gateway.post("/api/v1/me/step-up/verify", headers=owner.auth, json={"code": code})
    assert verified.status_code == 200, verified.text
    users = await gateway.get("/api/v1/me/users", headers=owner.auth)
    assert users.status_code == 200, users.text
    assert [u["externalIds"] for u in users.json()["items"] if u["owner"]] == [["line"]]

    # Another browser logs in with the LINE ID alone; last login moves.
    before = await last_login(gateway, owner)
    await asyncio.sleep(1.1)
    async with httpx.AsyncClient(timeout=20) as other:
        answer = await through_idp(other, await other.get(f"{system}/login/external/line"), system, line_user)
        assert answer.status_code == 303 and answer.headers["location"] == "/account", answer.text
        home = await other.get(f"{system}/account")
        assert home.status_code == 200 and owner.login_id in home.text
    after = await last_login(gateway, owner)
    assert after is not None and (before is None or after > before)

    # An unknown LINE ID is refused and offered registration; nothing is signed in.
    async with httpx.AsyncClient(timeout=20) as stranger:
        answer = await through_idp(stranger, await stranger.get(f"{system}/login/external/line"), system,
                                   f"stranger-{uuid.uuid4().hex[:6]}")
        assert answer.status_code == 404 and 'data-code="federation.not_linked"' in answer.text
        assert 'href="/register"' in answer.text
        assert (await stranger.get(f"{system}/account")).status_code == 303

    # A callback replayed (same state and code) finds no flow.
    replay = await browser.get(f"{system}/login/external/line/callback", params={"state": "x", "code": "y"})
    assert replay.status_code == 400 and 'data-code="federation.state_invalid"' in replay.text

    # Unlink: the LINE ID no longer logs in.
    page = await browser.get(f"{system}/account/external")
    unlinked = await browser.post(f"{system}/account/external/line/unlink", data={"csrf": _csrf(page.text)})
    assert unlinked.status_code == 200 and "連携を解除しました" in unlinked.text and "未連携" in unlinked.text
    async with httpx.AsyncClient(timeout=20) as other:
        answer = await through_idp(other, await other.get(f"{system}/login/external/line"), system, line_user)
        assert answer.status_code == 404 and 'data-code="federation.not_linked"' in answer.text


async def accept_with_line(browser: httpx.AsyncClient, system: str, line: dict[str, str], token: str, key: str,
                           line_user: str) -> httpx.Response:
    """The invitee's pages: the mailed link, the key, then 「LINEでログイン」 on the choice of ID."""
    opened = await browser.get(f"{system}/invitations/accept", params={"token": token})
    assert opened.status_code == 200, opened.text
    choice = await browser.post(f"{system}/invitations/accept", data={"csrf": _csrf(opened.text), "token": token,
                                                                      "key": key})
    assert choice.status_code == 200 and 'href="/invitations/accept/external/line"' in choice.text, choice.text
    started = await browser.get(f"{system}/invitations/accept/external/line")
    assert started.status_code == 303 and started.headers["location"].startswith(line["issuer"]), started.text
    return await through_idp(browser, started, system, line_user)


async def test_an_invitee_redeems_with_line(system: str, settings: Settings, gateway: httpx.AsyncClient,
                                            line: dict[str, str]) -> None:
    from tests.e2e.test_invite import confirmation_token, stepped_up_owner

    owner = await stepped_up_owner(settings, gateway)
    key = (await gateway.post("/api/v1/me/invitations", headers=owner.auth)).json()["key"]
    guest = f"guest-{uuid.uuid4().hex[:8]}@example.jp"
    token = await confirmation_token(settings, gateway, guest)
    line_user = f"line-{uuid.uuid4().hex[:8]}"

    # An unknown LINE ID: the invitee's account is made on the confirmed address, linked to it.
    async with httpx.AsyncClient(timeout=20) as invitee:
        done = await accept_with_line(invitee, system, line, token, key, line_user)
        assert done.status_code == 200 and "利用者として登録されました" in done.text, done.text
        assert guest in done.text and "「LINEでログイン」からログインしてください" in done.text
    users = (await gateway.get("/api/v1/me/users", headers=owner.auth)).json()["items"]
    assert [(u["loginId"], u["accountType"], u["accountTypeLabel"], u["externalIds"]) for u in users] == [
        (owner.login_id, "email_id", "メールアドレスID", []), (guest, "external_id", "外部サービスID", ["line"])]
    keys = (await gateway.get("/api/v1/me/invitations", headers=owner.auth)).json()["items"]
    assert [(k["status"], k["redeemedBy"]) for k in keys] == [("redeemed", guest)]

    # The new ID logs in with LINE alone.
    async with httpx.AsyncClient(timeout=20) as other:
        answer = await through_idp(other, await other.get(f"{system}/login/external/line"), system, line_user)
        assert answer.status_code == 303 and answer.headers["location"] == "/account", answer.text
        assert guest in (await other.get(f"{system}/account")).text

    # Another owner's invitation, redeemed with the same (now linked) LINE ID on another address: the same account.
    second = await stepped_up_owner(settings, gateway)
    key2 = (await gateway.post("/api/v1/me/invitations", headers=second.auth)).json()["key"]
    token2 = await confirmation_token(settings, gateway, f"other-{uuid.uuid4().hex[:8]}@example.jp")
    async with httpx.AsyncClient(timeout=20) as invitee:
        done = await accept_with_line(invitee, system, line, token2, key2, line_user)
        assert done.status_code == 200 and guest in done.text, done.text
    users = (await gateway.get("/api/v1/me/users", headers=second.auth)).json()["items"]
    assert [(u["loginId"], u["externalIds"]) for u in users][1:] == [(guest, ["line"])]

    # A wrong key is still refused after the provider's login: back to the key screen with the remaining tries.
    key3 = (await gateway.post("/api/v1/me/invitations", headers=second.auth)).json()["key"]
    token3 = await confirmation_token(settings, gateway, f"third-{uuid.uuid4().hex[:8]}@example.jp")
    wrong = "ZZZZZZZZZZZZ" if key3 != "ZZZZZZZZZZZZ" else "YYYYYYYYYYYY"
    async with httpx.AsyncClient(timeout=20) as invitee:
        refused = await accept_with_line(invitee, system, line, token3, wrong, f"line-{uuid.uuid4().hex[:8]}")
        assert refused.status_code == 400 and 'data-code="invitation.key_wrong"' in refused.text, refused.text


@pytest.fixture(scope="module")
def yahoo(settings: Settings) -> Iterator[ForgingIdP]:
    """One provider (one signing key, whose JWKS the gateway caches) for every forgery."""
    provider = next(p for p in json.loads(settings.federation.providers) if p["id"] == "yahoo")
    with ForgingIdP(provider["issuer"], provider["clientId"]) as idp:
        yield idp


@pytest.mark.parametrize("forgery", ["wrong_signature", "wrong_audience", "replayed_nonce", "expired"])
async def test_a_forged_id_token_is_refused_at_the_callback(system: str, yahoo: ForgingIdP, forgery: Forgery
                                                            ) -> None:
    """The whole callback path in the running gateway: the token endpoint answers with a forged ID token and the
    page refuses it, signing nobody in. A genuine token from the same provider passes the checks first (its unknown
    subject is then refused as not linked), so each refusal is the forgery's."""
    async def sign_in(client: httpx.AsyncClient) -> httpx.Response:
        answer = await client.get(f"{system}/login/external/yahoo")
        assert answer.status_code == 303 and answer.headers["location"].startswith(yahoo.issuer), answer.text
        back = await client.get(answer.headers["location"])
        assert back.status_code == 302 and back.headers["location"].startswith(f"{system}/login/external/yahoo/")
        return await client.get(back.headers["location"])

    async with httpx.AsyncClient(timeout=20) as client:
        yahoo.forgery = "genuine"
        genuine = await sign_in(client)
        assert genuine.status_code == 404 and 'data-code="federation.not_linked"' in genuine.text, genuine.text
        yahoo.forgery = forgery
        forged = await sign_in(client)
        assert forged.status_code == 401 and 'data-code="federation.id_token_invalid"' in forged.text, forged.text
        assert (await client.get(f"{system}/account")).status_code == 303  # nobody signed in
