"""2 段階認証の登録: an operator's or a company admin's first login ends here (the API answered
``auth.totp_enrolment_required`` with a token that opens only the enrolment). The page shows the new seed as a QR
code, as text and as its ``otpauth://`` URI for the authenticator app, then confirms it with the app's first code;
confirming ends the sessions, so the next login asks for a code. The rules are lifecycle's, through the API's
handlers (``/me/totp``, ``/me/totp/confirm``)."""

from __future__ import annotations

from typing import Any

import segno
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.response import Template

from kagi_gateway.controllers.auth import PRIVILEGED, AuthController
from kagi_gateway.pages.forms import Refusal, Refused, body_of, form_of, form_page, message_page, operate, refusal_page
from kagi_gateway.pages.session import page_session
from kagi_gateway.services import Services
from kagi_shared.contracts.lifecycle import TotpConfirmIn

HOME = "/totp"
OPT = {"roles": PRIVILEGED, "totp_enrolment": True}
SEED = "totpSetup"  # the seed being set up, kept in the (server-side) page session until it is confirmed


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code: plain paths, no script and no style (the pages' policy allows neither)."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, border=4, title="認証アプリ登録用のQRコード"))


def grouped(secret: str) -> str:
    """The seed in groups of four, as people type it into an app."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _setup_page(request: Request[Any, Any, Any], seed: dict[str, str] | None, refusal: Refusal | None = None,
                ) -> Template:
    login_id = page_session(request).get("loginId")
    if seed is None:
        return form_page("totp.html", request, refusal, login_id=login_id, seed=None)
    return form_page("totp.html", request, refusal, login_id=login_id, seed=seed, qr=qr_svg(seed["uri"]),
                     secret=grouped(seed["secret"]))


class TotpPages(Controller):
    path = HOME
    include_in_schema = False

    @get("/", opt=OPT)
    async def start_page(self, request: Request[Any, Any, Any]) -> Template:
        return _setup_page(request, page_session(request).get(SEED))

    @post("/", opt=OPT, status_code=200)
    async def setup(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        """A new seed (a post: each one replaces the one before, which then confirms nothing)."""
        try:
            made = await operate(AuthController.totp_setup, request, services)
        except Refused as refused:
            return refusal_page(request, "2 段階認証の登録", refused.refusal,
                                links=[("/account", "マイページトップへ")])
        seed = {"secret": made.secret, "uri": made.otpauth_uri}
        page_session(request).data[SEED] = seed
        return _setup_page(request, seed)

    @post("/confirm", opt=OPT | {"rate": "guess"}, status_code=200)
    async def confirm(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        session = page_session(request)
        values = await form_of(request)
        try:
            await operate(AuthController.totp_confirm, request, services,
                          body_of({"code": values.get("code", "").strip()}, TotpConfirmIn))
        except Refused as refused:
            return _setup_page(request, session.get(SEED), refused.refusal)
        session.rotate()  # confirming ended every session of the account, the enrolment token's too
        return message_page(request, "2 段階認証の登録完了",
                            "認証アプリの登録が完了しました。ID・パスワードと認証アプリのワンタイムパスワードで、"
                            "もう一度ログインしてください。",
                            links=[("/login", "ログイン画面へ")])
