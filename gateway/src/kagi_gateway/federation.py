"""Kagi as relying party of external identity providers (seed 000: 「LINEでログイン」「Yahoo! JAPAN IDでログイン」…).

Per provider (``KAGI_FEDERATION_PROVIDERS``): discovery from its issuer, Authorization Code with PKCE (S256),
``state`` and ``nonce`` kept in the page session for one use, the code exchanged by Authlib's client and the ID
token verified by Authlib's OpenID Connect client against the provider's JWKS (signature, ``iss``, ``aud``, ``exp``,
``nonce``). Only then does lifecycle see the (provider, subject): a linked one logs in (last login moves, the
inactivity ladder counts it); an unknown one is refused and offered registration or linking — no login ever creates
an account from it. The one exception is an invitee redeeming an invitation key with it (seed 000): invite binds the
key to the linked account, or has lifecycle make the invitee's account linked to the ID. Linking (SNS連携) and
unlinking need a fresh step-up (追加認証), as the user list does.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from typing import Any

import msgspec
from authlib.integrations.base_client import BaseApp, FrameworkIntegration, OAuthError
from authlib.integrations.base_client.async_app import AsyncOAuth2Mixin
from authlib.integrations.base_client.async_openid import AsyncOpenIDMixin
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc.errors import JoseError
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from kagi_gateway.controllers.auth import _tokens
from kagi_gateway.controllers.step_up import StepUpController
from kagi_gateway.deps import PUBLIC, current_caller, portal_url, settings_of
from kagi_gateway.pages.account import local_path
from kagi_gateway.pages.forms import (
    Refused,
    message_page,
    operate,
    operate_form,
    page,
    refusal_of,
    see_other,
)
from kagi_gateway.pages.session import page_session
from kagi_gateway.services import ForwardedProblem, Services
from kagi_shared.contracts.invite import StepUpVerifyIn
from kagi_shared.contracts.lifecycle import ExternalLinkIn, ExternalLoginIn
from kagi_shared.logging import get_logger
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings

log = get_logger(__name__)
OWNER = ("owner",)
FLOW_TTL_S = 600
SAFE_ALGS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
REFUSED = "外部サービスのIDを確認できませんでした。もう一度お試しください。"


class ExternalProvider(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    id: str
    display_name: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid"


@functools.cache
def _parse(raw: str) -> dict[str, ExternalProvider]:
    found = msgspec.json.decode(raw or "[]", type=list[ExternalProvider])
    return {p.id: p for p in found}


def providers(settings: Settings) -> dict[str, ExternalProvider]:
    return _parse(settings.federation.providers)


class ExternalIdP(AsyncOAuth2Mixin, AsyncOpenIDMixin, BaseApp):  # type: ignore[misc]
    """Authlib's OpenID Connect client for one provider (as its web-framework integrations build it)."""

    client_cls = AsyncOAuth2Client


_CLIENTS: dict[ExternalProvider, ExternalIdP] = {}


def client_for(provider: ExternalProvider) -> ExternalIdP:
    found = _CLIENTS.get(provider)
    if found is None:
        found = ExternalIdP(FrameworkIntegration(provider.id), name=provider.id, client_id=provider.client_id,
                            client_secret=provider.client_secret,
                            server_metadata_url=f"{provider.issuer.rstrip('/')}/.well-known/openid-configuration",
                            client_kwargs={"scope": provider.scopes, "code_challenge_method": "S256",
                                           "token_endpoint_auth_method": "client_secret_basic", "timeout": 10})
        _CLIENTS[provider] = found
    return found


async def metadata_of(provider: ExternalProvider, idp: ExternalIdP) -> dict[str, Any]:
    """The provider's discovery document; its issuer must be the configured one (OpenID Discovery §4.3), and only
    asymmetric signatures are accepted for ID tokens (never ``none`` or a MAC keyed with the client secret)."""
    metadata: dict[str, Any] = await idp.load_server_metadata()
    if metadata.get("issuer") != provider.issuer:
        raise Problem(502, "federation.issuer_mismatch", REFUSED)
    offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    metadata["id_token_signing_alg_values_supported"] = [a for a in offered if a in SAFE_ALGS] or ["RS256"]
    return metadata


async def verified_subject(provider: ExternalProvider, idp: ExternalIdP, token: dict[str, Any],
                           nonce: str) -> str:
    """The ``sub`` of an ID token that passed Authlib's checks (signature by the provider's JWKS, ``iss``, ``aud``,
    ``exp``, ``iat``, ``nonce``, ``at_hash`` when present); anything else is refused."""
    await metadata_of(provider, idp)
    try:
        claims = await idp.parse_id_token(token, nonce=nonce, leeway=60)
    except (JoseError, ValueError, KeyError) as exc:
        log.warning("federation.id_token_refused", provider=provider.id, reason=type(exc).__name__, detail=str(exc))
        raise Problem(401, "federation.id_token_invalid", REFUSED, str(type(exc).__name__)) from None
    if claims is None or not claims.get("sub"):
        raise Problem(401, "federation.id_token_invalid", REFUSED)
    return str(claims["sub"])


def _callback(provider: ExternalProvider, settings: Settings) -> str:
    return portal_url(settings, f"/login/external/{provider.id}/callback")


def _provider(provider_id: str, settings: Settings) -> ExternalProvider:
    found = providers(settings).get(provider_id)
    if found is None:
        raise Problem(404, "federation.unknown_provider", "このサービスのIDではログインできません。")
    return found


async def start_with(request: Request[Any, Any, Any], provider_id: str, mode: str, next_path: str) -> Redirect:
    """Send the browser to the provider's login; ``mode`` says what the callback does with the verified ID
    (``login``, ``link``, or ``redeem``: the invitation waiting in the page session)."""
    return await _start(request, _provider(provider_id, settings_of(request)), mode, next_path)


async def _start(request: Request[Any, Any, Any], provider: ExternalProvider, mode: str, next_path: str) -> Redirect:
    idp = client_for(provider)
    await metadata_of(provider, idp)
    state = secrets.token_urlsafe(24)
    started = await idp.create_authorization_url(_callback(provider, settings_of(request)), state=state)
    page_session(request).data["federation"] = {
        "provider": provider.id, "state": state, "nonce": started["nonce"], "verifier": started["code_verifier"],
        "mode": mode, "next": next_path, "at": time.time()}
    request.scope.setdefault("state", {})["form_action"] = [_origin(started["url"])]
    return Redirect(path=started["url"], status_code=303)


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


async def _step_up_open(services: Services, request: Request[Any, Any, Any]) -> bool:
    return (await services.invite.step_up(current_caller(request))).verified


class FederationPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/login/external/{provider_id:str}", opt={"roles": PUBLIC})
    async def login_with(self, request: Request[Any, Any, Any], provider_id: FromPath[str]) -> Redirect:
        next_path = request.query_params.get("next")
        return await _start(request, _provider(provider_id, settings_of(request)), "login", local_path(next_path))

    @get("/login/external/{provider_id:str}/callback", opt={"roles": PUBLIC})
    async def callback(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                       provider_id: FromPath[str]) -> Any:
        session = page_session(request)
        flow = session.data.pop("federation", None)  # one use: a replayed state or nonce finds nothing
        sent = request.query_params.get("state") or ""
        if (not isinstance(flow, dict) or flow.get("provider") != provider_id
                or not hmac.compare_digest(sent.encode(), str(flow.get("state")).encode())
                or time.time() - float(flow.get("at", 0)) > FLOW_TTL_S):
            return message_page(request, "ログインできません", REFUSED, 400, "federation.state_invalid",
                                links=[("/login", "ログイン画面へ")])
        if request.query_params.get("error"):
            return message_page(request, "ログインできません", "外部サービスでのログインが完了しませんでした。", 400,
                                "federation.cancelled", links=[("/login", "ログイン画面へ")])
        provider = _provider(provider_id, settings_of(request))
        idp = client_for(provider)
        try:
            token = await idp.fetch_access_token(redirect_uri=_callback(provider, settings_of(request)),
                                                 code=request.query_params.get("code", ""),
                                                 code_verifier=flow["verifier"])
            subject = await verified_subject(provider, idp, token, str(flow["nonce"]))
        except OAuthError:
            return message_page(request, "ログインできません", REFUSED, 401, "federation.code_refused",
                                links=[("/login", "ログイン画面へ")])
        except Problem as refused:
            return message_page(request, "ログインできません", refused.title, refused.status, refused.code,
                                links=[("/login", "ログイン画面へ")])
        if flow["mode"] == "link":
            return await _link(request, services, session, provider, subject)
        if flow["mode"] == "redeem":
            from kagi_gateway.pages.invitations import redeem_with_external  # the pages import this module

            return await redeem_with_external(request, services, provider.id, subject)
        return await _log_in(request, services, provider, subject, str(flow.get("next") or "/account"))

    # -- SNS連携 (owner, after a fresh step-up) ------------------------------------------------------------------
    @get("/account/external", opt={"roles": OWNER})
    async def linked(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        return await _links_page(request, services)

    @post("/account/external/step-up", opt={"roles": OWNER}, status_code=200)
    async def step_up(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        try:
            issued = await operate(StepUpController.issue, request, services)
        except Refused as refused:
            return await _links_page(request, services, refused.refusal.message)
        return await _links_page(request, services, f"認証コードを {issued.sent_to} に送信しました。", code_sent=True)

    @post("/account/external/step-up/verify", opt={"roles": OWNER, "rate": "guess"}, status_code=200)
    async def verify(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        try:
            await operate_form(StepUpController.verify, request, services, StepUpVerifyIn)
        except Refused as refused:
            return await _links_page(request, services, refused.refusal.message, code_sent=True)
        return await _links_page(request, services, "追加認証が完了しました。")

    @post("/account/external/{provider_id:str}/link", opt={"roles": OWNER}, status_code=303)
    async def link(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                   provider_id: FromPath[str]) -> Any:
        provider = _provider(provider_id, settings_of(request))
        if not await _step_up_open(services, request):
            return await _links_page(request, services, "連携の前に追加認証を行ってください。")
        return await _start(request, provider, "link", "/account/external")

    @post("/account/external/{provider_id:str}/unlink", opt={"roles": OWNER}, status_code=200)
    async def unlink(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     provider_id: FromPath[str]) -> Template:
        provider = _provider(provider_id, settings_of(request))
        if not await _step_up_open(services, request):
            return await _links_page(request, services, "連携の解除の前に追加認証を行ってください。")
        try:
            await services.lifecycle.unlink(current_caller(request), provider.id)
        except ForwardedProblem as exc:
            return await _links_page(request, services, refusal_of(exc).message)
        return await _links_page(request, services, f"{_service_name(provider)}との連携を解除しました。")


def _service_name(provider: ExternalProvider) -> str:
    return provider.display_name.removesuffix("でログイン").removesuffix("でサインイン")


def service_names(settings: Settings) -> list[tuple[str, str]]:
    """(provider id, its service's name: 「LINE」) in the configured order, for 「SNS連携の状況」."""
    return [(p.id, _service_name(p)) for p in providers(settings).values()]


async def _links_page(request: Request[Any, Any, Any], services: Services, notice: str | None = None,
                      code_sent: bool = False) -> Template:
    caller = current_caller(request)
    held = await services.lifecycle.my_links(caller)
    linked = {row.provider for row in held.links}
    fresh = await _step_up_open(services, request)
    configured = providers(settings_of(request)).values()
    rows = [{"id": p.id, "name": _service_name(p), "linked": p.id in linked} for p in configured]
    # Linking posts a form that the answer redirects to the provider (Chrome checks form-action on it).
    request.scope.setdefault("state", {})["form_action"] = [_origin(p.issuer) for p in configured]
    return page("external_links.html", request, rows=rows, notice=notice, fresh=fresh, code_sent=code_sent)


async def _link(request: Request[Any, Any, Any], services: Services, session: Any, provider: ExternalProvider,
                subject: str) -> Template:
    if not session.get("accessToken"):
        return message_page(request, "連携できません", "ログインしてから連携してください。", 401, "auth.required",
                            links=[("/login", "ログイン画面へ")])
    from kagi_gateway.deps import authorize

    try:
        await authorize(request, FederationPages.linked, str(session.get("accessToken")))
        if not await _step_up_open(services, request):
            raise Problem(403, "invite.step_up_required", "連携の前に追加認証を行ってください。")
        await services.lifecycle.link(current_caller(request), provider.id, ExternalLinkIn(subject=subject))
    except (Problem, ForwardedProblem) as exc:
        refusal = refusal_of(exc)
        return message_page(request, "連携できません", refusal.message, refusal.status, refusal.code,
                            links=[("/account/external", "SNS連携へ")])
    return message_page(request, "SNS連携", f"{_service_name(provider)}と連携しました。",
                        links=[("/account/external", "SNS連携へ")])


async def _log_in(request: Request[Any, Any, Any], services: Services, provider: ExternalProvider, subject: str,
                  next_path: str) -> Any:
    session = page_session(request)
    try:
        opened = await services.lifecycle.external_session(ExternalLoginIn(provider=provider.id, subject=subject))
        tokens = _tokens(opened, settings_of(request))
    except (Problem, ForwardedProblem) as exc:
        refusal = refusal_of(exc)
        links = [("/login", "ログイン画面へ")]
        if refusal.code == "federation.not_linked":
            links = [("/register", "新規登録はこちら"), ("/login", "IDとパスワードでログインして連携する")]
        return message_page(request, "ログインできません", refusal.message, refusal.status, refusal.code,
                            links=links)
    kept = {"reauthFor": session.get("reauthFor")} if session.get("reauthFor") else {}
    session.rotate(accessToken=tokens.access_token, refreshToken=tokens.refresh_token,
                   loginId=opened.account.login_id, authTime=time.time(), via=provider.id, **kept)
    return see_other(local_path(next_path))
