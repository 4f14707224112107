"""Lifecycle's internal routes for external IDs (SNS連携): links of the caller, and login with a verified one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, delete, get, post, put
from litestar.params import FromPath, JSONBody

from kagi_lifecycle.bootstrap import Lifecycle
from kagi_lifecycle.domain.accounts import Account
from kagi_shared.contracts.lifecycle import (
    AccountOut,
    ExternalLinkIn,
    ExternalLinkOut,
    ExternalLinksOut,
    ExternalLoginIn,
    InviteeAccountIn,
    InviteeAccountOut,
    SessionOpened,
)
from kagi_shared.problems import Problem
from kagi_shared.service_api import caller_of, correlation_of


def federation_handlers(lc: Callable[[], Lifecycle], opened: Callable[[Account], Awaitable[SessionOpened]],
                        account_out: Callable[[Account], AccountOut]) -> list[Any]:
    """``opened(account)`` builds the same answer as a password login (session, refresh token); ``account_out``
    the same account body as the other account routes."""

    @post("/internal/accounts/external", status_code=200)
    async def invitee_account(data: JSONBody[InviteeAccountIn], request: Request[Any, Any, Any]) -> InviteeAccountOut:
        """Invite's redemption with an external ID: the linked account, or a new one linked to it."""
        account, created = await lc().federation.account_for_invitee(
            data.provider, data.subject, data.login_id, data.email, data.roles, request.headers.get("x-request-id"))
        return InviteeAccountOut(account=account_out(account), created=created)

    @post("/internal/sessions/external", status_code=200)
    async def external_session(data: JSONBody[ExternalLoginIn], request: Request[Any, Any, Any]) -> SessionOpened:
        account = await lc().federation.login(data.provider, data.subject, correlation_of(request))
        return await opened(account)

    @get("/internal/me/external-links")
    async def my_links(request: Request[Any, Any, Any]) -> ExternalLinksOut:
        links = await lc().federation.links_of(caller_of(request).account_id)
        return ExternalLinksOut(links=[ExternalLinkOut(provider=k.provider, linked_at=k.linked_at) for k in links])

    @get("/internal/accounts/{account_id:str}/external-links")
    async def links_of(account_id: FromPath[str]) -> ExternalLinksOut:
        links = await lc().federation.links_of(account_id)
        return ExternalLinksOut(links=[ExternalLinkOut(provider=k.provider, linked_at=k.linked_at) for k in links])

    @put("/internal/me/external-links/{provider:str}", status_code=200)
    async def link(provider: FromPath[str], data: JSONBody[ExternalLinkIn],
                   request: Request[Any, Any, Any]) -> ExternalLinkOut:
        made = await lc().federation.link(caller_of(request).account_id, provider, data.subject)
        return ExternalLinkOut(provider=made.provider, linked_at=made.linked_at)

    @delete("/internal/me/external-links/{provider:str}", status_code=204)
    async def unlink(provider: FromPath[str], request: Request[Any, Any, Any]) -> None:
        if not await lc().federation.unlink(caller_of(request).account_id, provider):
            raise Problem(404, "federation.not_linked", "このサービスとは連携されていません。")

    return [invitee_account, external_session, my_links, links_of, link, unlink]
