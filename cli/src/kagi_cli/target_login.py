"""Development tool, not a service: the target simulator's login screen — a TAXIS stand-in that logs its system users
in through Kagi (OpenID Connect, Authorization Code + PKCE, with Authlib's client) and shows the permission it
received. ``make run`` starts it next to the grant simulator; it registers its own client at the first start.

Run: ``python -m kagi_cli.target_login`` (port ``KAGI_SIMULATOR_LOGIN_PORT``, default the gateway's + 110: 8110).
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from pathlib import Path
from typing import Any

from authlib.integrations.base_client import BaseApp, FrameworkIntegration, OAuthError
from authlib.integrations.base_client.async_app import AsyncOAuth2Mixin
from authlib.integrations.base_client.async_openid import AsyncOpenIDMixin
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc.errors import JoseError
from litestar import Litestar, MediaType, Request, Response, get
from litestar.response import Redirect

from kagi_shared.settings import Settings, get_settings

SYSTEM = "TAXIS"
FLOW_TTL_S = 600


class KagiClient(AsyncOAuth2Mixin, AsyncOpenIDMixin, BaseApp):  # type: ignore[misc]
    client_cls = AsyncOAuth2Client


def port(settings: Settings) -> int:
    from kagi_cli.main import target_login_port

    return target_login_port(settings)


async def registered_client(settings: Settings, base_url: str) -> dict[str, str]:
    """This tool's client (kept in ``<var>/target-login-client.json``), registered as ``kagi clients create`` does."""
    path = Path(settings.var_path) / "target-login-client.json"
    if path.exists():
        found: dict[str, str] = json.loads(path.read_text())
        if found.get("redirectUri") == f"{base_url}/callback":
            return found
    from kagi_lifecycle.bootstrap import bootstrap

    lifecycle = bootstrap(settings)
    try:
        await lifecycle.start()
        client, secret = await lifecycle.oidc.create_client(SYSTEM, [f"{base_url}/callback"], "TAXIS シミュレータ",
                                                            [f"{base_url}/"])
    finally:
        await lifecycle.close()
    found = {"clientId": client.id, "clientSecret": secret, "redirectUri": f"{base_url}/callback"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found))
    path.chmod(0o600)
    return found


def _page(body: str, status: int = 200) -> Response[str]:
    return Response(f'<!doctype html><html lang="ja"><meta charset="utf-8"><title>TAXIS（シミュレータ）</title>'
                    f"<h1>TAXIS（シミュレータ）</h1>{body}</html>", media_type=MediaType.HTML, status_code=status)


def create_app(issuer: str, client: dict[str, str], base_url: str) -> Litestar:
    kagi = KagiClient(FrameworkIntegration("kagi"), name="kagi", client_id=client["clientId"],
                      client_secret=client["clientSecret"],
                      server_metadata_url=f"{issuer}/.well-known/openid-configuration",
                      client_kwargs={"scope": "openid profile", "code_challenge_method": "S256", "timeout": 10})
    flows: dict[str, dict[str, Any]] = {}

    @get("/")
    async def home() -> Response[str]:
        return _page('<p><a href="/login">Kagiでログイン</a></p>')

    @get("/login")
    async def login() -> Redirect:
        started = await kagi.create_authorization_url(f"{base_url}/callback")
        now = time.monotonic()
        for key in [k for k, v in flows.items() if now - v["at"] > FLOW_TTL_S]:
            flows.pop(key)
        flows[started["state"]] = {**started, "at": now}
        return Redirect(path=started["url"], status_code=303)

    @get("/callback")
    async def callback(request: Request[Any, Any, Any]) -> Response[str]:
        flow = flows.pop(request.query_params.get("state", ""), None)
        if flow is None:
            return _page("<p>ログインをやり直してください。</p>", 400)
        if request.query_params.get("error"):
            return _page(f"<p>ログインできませんでした（{html.escape(request.query_params['error'])}）。</p>", 401)
        try:
            token = await kagi.fetch_access_token(redirect_uri=f"{base_url}/callback",
                                                  code=request.query_params.get("code", ""),
                                                  code_verifier=flow["code_verifier"])
            claims = await kagi.parse_id_token(token, nonce=flow["nonce"])
            info = await kagi.userinfo(token=token)
        except (OAuthError, JoseError, ValueError) as exc:
            return _page(f"<p>ログインできませんでした（{html.escape(type(exc).__name__)}）。</p>", 401)
        rows = [("ログインID", info.get("kagi_login_id") or claims.get("kagi_login_id")),
                ("システム", info.get("kagi_system")), ("権限", info.get("kagi_permission")),
                ("会社", info.get("kagi_company_id"))]
        table = "".join(f"<tr><th>{html.escape(k)}</th><td data-claim>{html.escape(str(v))}</td></tr>"
                        for k, v in rows)
        return _page(f"<p>Kagiでログインしました。</p><table>{table}</table>")

    return Litestar(route_handlers=[home, login, callback])


def main() -> None:
    from kagi_shared.service_api import serve

    settings = get_settings()
    base_url = f"http://127.0.0.1:{port(settings)}"
    client = asyncio.run(registered_client(settings, base_url))
    serve(create_app(settings.brand.portal_url.rstrip("/"), client, base_url), port(settings), settings)


if __name__ == "__main__":
    main()
