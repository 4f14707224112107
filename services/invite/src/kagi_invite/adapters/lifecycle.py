"""Lifecycle's internal API as invite's redemption needs it: create the invitee's account, check an existing login,
find or create the account of a verified external ID, and read accounts and their SNS links for the user list.

Invite calls lifecycle with lifecycle's own internal credential (``KAGI_SECURITY_INTERNAL_TOKEN_LIFECYCLE``; the
shared one in dev and test). A refusal from lifecycle comes back as the same ``Problem`` (status, code, title,
fields, extras), so the invitee sees exactly what lifecycle said; an unreachable lifecycle is a 503 or 504.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from kagi_invite.domain.invitations import AccountInfo, AccountRef, LoginRefused
from kagi_shared.contracts.lifecycle import CreateAccountIn, InviteeAccountIn, LifecycleClient, LoginIn
from kagi_shared.problems import FieldError, Problem, service_unavailable
from kagi_shared.service_api import INTERNAL_TOKEN_HEADER, Caller, caller_headers
from kagi_shared.settings import Settings
from kagi_shared.tracing import inject


def problem_of(response: httpx.Response) -> Problem:
    """Lifecycle's problem+json as the same Problem (what it said reaches the invitee unchanged)."""
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    known = {"type", "title", "status", "code", "detail", "instance", "requestId", "errors"}
    errors = [FieldError(str(e.get("field", "")), str(e.get("reason", ""))) for e in body.get("errors") or []
              if isinstance(e, dict)]
    headers = {k: v for k, v in response.headers.items() if k.lower() == "retry-after"}
    return Problem(response.status_code, str(body.get("code") or "service.error"),
                   str(body.get("title") or "ただいまサービスを利用できません。しばらくしてから再度お試しください。"),
                   body.get("detail"), errors=errors, headers=headers,
                   extra={k: v for k, v in body.items() if k not in known})


class _HttpTransport:
    """``kagi_shared.contracts.Transport`` for invite's calls to lifecycle: a problem comes back as ``Problem``."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None) -> None:
        timeout = httpx.Timeout(settings.http.service_timeout_s, connect=1.0)
        # One more connect on a connect failure: the request was never sent, so even a POST is safe to resend.
        self.client = httpx.AsyncClient(
            base_url=settings.service_url("lifecycle"), timeout=timeout,
            headers={INTERNAL_TOKEN_HEADER: settings.internal_token_for("lifecycle")},
            transport=transport or httpx.AsyncHTTPTransport(retries=1))

    async def send(self, service: str, method: str, path: str, *, caller: Caller | None = None,
                   body: bytes | None = None, params: Mapping[str, str] | None = None,
                   request_id: str | None = None, route: str | None = None, chained: bool = False) -> bytes:
        headers = inject(caller_headers(caller) if caller else {})
        headers["content-type"] = "application/json"
        if request_id:
            headers["x-request-id"] = request_id
        try:
            response = await self.client.request(method, path, content=body, params=params, headers=headers)
        except httpx.TimeoutException:
            raise Problem(504, "service.timeout", "処理がタイムアウトしました。しばらくしてから再度お試しください。",
                          extra={"service": service}) from None
        except httpx.TransportError:
            raise service_unavailable(service) from None
        if response.status_code >= 400:
            raise problem_of(response)
        return response.content


class LifecycleAccounts:
    """The adapter: lifecycle's typed client over HTTP; ``transport`` lets a test put lifecycle's real app
    in-process (httpx's ASGI transport)."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = _HttpTransport(settings, transport)
        self.lifecycle = LifecycleClient(self.http)

    @property
    def client(self) -> httpx.AsyncClient:
        return self.http.client

    async def close(self) -> None:
        await self.http.client.aclose()

    async def create_account(self, login_id: str, password: str, email: str, roles: list[str],
                             correlation_id: str | None) -> AccountRef:
        made = await self.lifecycle.create_account(
            CreateAccountIn(login_id=login_id, password=password, roles=roles, email=email), rid=correlation_id)
        return AccountRef(account_id=made.account_id, login_id=made.login_id, email=made.email, new_account=True)

    async def check_login(self, login_id: str, password: str, correlation_id: str | None) -> AccountRef:
        try:
            found = await self.lifecycle.login(LoginIn(login_id=login_id, password=password), rid=correlation_id)
        except Problem as refused:
            if refused.status == 401:
                raise LoginRefused(refused) from None
            raise
        return AccountRef(account_id=found.account_id, login_id=found.login_id, email=found.email)

    async def external_account(self, provider: str, subject: str, email: str, roles: list[str],
                               correlation_id: str | None) -> AccountRef:
        found = await self.lifecycle.invitee_account(
            InviteeAccountIn(provider=provider, subject=subject, login_id=email, email=email, roles=roles),
            rid=correlation_id)
        return AccountRef(account_id=found.account.account_id, login_id=found.account.login_id,
                          email=found.account.email, new_account=found.created)

    async def account(self, account_id: str, correlation_id: str | None) -> AccountInfo:
        found = await self.lifecycle.account(account_id, rid=correlation_id)
        return AccountInfo(account_id=found.account_id, login_id=found.login_id, email=found.email,
                           issued_at=found.issued_at)

    async def linked_providers(self, account_id: str, correlation_id: str | None) -> list[str]:
        found = await self.lifecycle.links_of(account_id, rid=correlation_id)
        return sorted(link.provider for link in found.links)
