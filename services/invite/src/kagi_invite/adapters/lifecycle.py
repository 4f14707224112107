"""Lifecycle's internal API as invite's redemption needs it: create the invitee's account, check an existing login,
find or create the account of a verified external ID, and read accounts and their SNS links for the user list.

Invite calls lifecycle with lifecycle's own internal credential (``KAGI_SECURITY_INTERNAL_TOKEN_LIFECYCLE``; the
shared one in dev and test). A refusal from lifecycle comes back as the same ``Problem`` (status, code, title,
fields, extras), so the invitee sees exactly what lifecycle said; an unreachable lifecycle is a 503 or 504.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import msgspec

from kagi_invite.domain.invitations import AccountInfo, AccountRef, LoginRefused
from kagi_shared.problems import FieldError, Problem, service_unavailable
from kagi_shared.service_api import INTERNAL_TOKEN_HEADER
from kagi_shared.settings import Settings
from kagi_shared.tracing import inject


class _Account(msgspec.Struct, rename="camel", kw_only=True):
    account_id: str
    login_id: str
    email: str
    issued_at: datetime


class _ExternalAccount(msgspec.Struct, rename="camel", kw_only=True):
    account: _Account
    created: bool


class _Link(msgspec.Struct, rename="camel", kw_only=True):
    provider: str


class _Links(msgspec.Struct, rename="camel", kw_only=True):
    links: list[_Link]


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


class LifecycleAccounts:
    """The HTTP adapter; ``transport`` lets a test put lifecycle's real app in-process (httpx's ASGI transport)."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        timeout = httpx.Timeout(settings.http.service_timeout_s, connect=1.0)
        # One more connect on a connect failure: the request was never sent, so even a POST is safe to resend.
        self.client = httpx.AsyncClient(
            base_url=settings.service_url("lifecycle"), timeout=timeout,
            headers={INTERNAL_TOKEN_HEADER: settings.internal_token_for("lifecycle")},
            transport=transport or httpx.AsyncHTTPTransport(retries=1))

    async def close(self) -> None:
        await self.client.aclose()

    async def _call(self, method: str, path: str, correlation_id: str | None, json: Any = None) -> bytes:
        headers = inject({})
        if correlation_id:
            headers["x-request-id"] = correlation_id
        try:
            response = await self.client.request(method, path, json=json, headers=headers)
        except httpx.TimeoutException:
            raise Problem(504, "service.timeout", "処理がタイムアウトしました。しばらくしてから再度お試しください。",
                          extra={"service": "lifecycle"}) from None
        except httpx.TransportError:
            raise service_unavailable("lifecycle") from None
        if response.status_code >= 400:
            raise problem_of(response)
        return response.content

    async def create_account(self, login_id: str, password: str, email: str, roles: list[str],
                             correlation_id: str | None) -> AccountRef:
        body = await self._call("POST", "/internal/accounts", correlation_id, {
            "loginId": login_id, "password": password, "roles": roles, "email": email})
        made = msgspec.json.decode(body, type=_Account)
        return AccountRef(account_id=made.account_id, login_id=made.login_id, email=made.email, new_account=True)

    async def check_login(self, login_id: str, password: str, correlation_id: str | None) -> AccountRef:
        try:
            body = await self._call("POST", "/internal/login", correlation_id,
                                    {"loginId": login_id, "password": password})
        except Problem as refused:
            if refused.status == 401:
                raise LoginRefused(refused) from None
            raise
        found = msgspec.json.decode(body, type=_Account)
        return AccountRef(account_id=found.account_id, login_id=found.login_id, email=found.email)

    async def external_account(self, provider: str, subject: str, email: str, roles: list[str],
                               correlation_id: str | None) -> AccountRef:
        body = await self._call("POST", "/internal/accounts/external", correlation_id, {
            "provider": provider, "subject": subject, "loginId": email, "email": email, "roles": roles})
        found = msgspec.json.decode(body, type=_ExternalAccount)
        return AccountRef(account_id=found.account.account_id, login_id=found.account.login_id,
                          email=found.account.email, new_account=found.created)

    async def account(self, account_id: str, correlation_id: str | None) -> AccountInfo:
        found = msgspec.json.decode(await self._call("GET", f"/internal/accounts/{account_id}", correlation_id),
                                    type=_Account)
        return AccountInfo(account_id=found.account_id, login_id=found.login_id, email=found.email,
                           issued_at=found.issued_at)

    async def linked_providers(self, account_id: str, correlation_id: str | None) -> list[str]:
        body = await self._call("GET", f"/internal/accounts/{account_id}/external-links", correlation_id)
        return sorted(link.provider for link in msgspec.json.decode(body, type=_Links).links)
