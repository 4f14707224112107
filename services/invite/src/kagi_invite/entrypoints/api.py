"""Invite's internal API: the step-up check, invitation keys, redemption and the user list (SPEC §2)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import JSONBody

from kagi_invite.bootstrap import NAME, Invite, bootstrap
from kagi_invite.entrypoints.claims import claim_handlers
from kagi_invite.entrypoints.invitations import invitation_handlers
from kagi_invite.entrypoints.locations import location_handlers
from kagi_shared.contracts.invite import StepUpIssuedOut, StepUpStateOut, StepUpVerifyIn
from kagi_shared.service_api import RunningService, ServiceApi, api_entrypoints, caller_as, correlation_of
from kagi_shared.settings import Settings

# A viewer-only account steps up too: its withdrawal needs it.
STEP_UP_ROLES = ("owner", "viewer")


def _mask(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}"


def service_api(settings: Settings, invite: Invite | None = None) -> ServiceApi:
    app = RunningService(invite, lambda: bootstrap(settings))

    @post("/internal/step-up", status_code=201)
    async def issue(request: Request[Any, Any, Any]) -> StepUpIssuedOut:
        caller = caller_as(request, *STEP_UP_ROLES)
        code = await app().step_up.issue(caller, correlation_of(request))
        return StepUpIssuedOut(code_id=code.id, expires_at=code.expires_at, sent_to=_mask(caller.email))

    @post("/internal/step-up/verify", status_code=200)
    async def verify(data: JSONBody[StepUpVerifyIn], request: Request[Any, Any, Any]) -> StepUpStateOut:
        caller = caller_as(request, *STEP_UP_ROLES)
        until = await app().step_up.verify(caller, data.code, correlation_of(request))
        return StepUpStateOut(verified=True, valid_until=until)

    @get("/internal/step-up")
    async def status(request: Request[Any, Any, Any]) -> StepUpStateOut:
        caller = caller_as(request, *STEP_UP_ROLES)
        until = await app().step_up.window(caller)
        return StepUpStateOut(verified=until is not None, valid_until=until)

    handlers = [issue, verify, status, *invitation_handlers(app, settings),
                *location_handlers(app), *claim_handlers(app)]
    return app.api(NAME, handlers)


create_app, main = api_entrypoints(NAME, service_api)


if __name__ == "__main__":
    main()
