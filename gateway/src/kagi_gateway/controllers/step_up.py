"""The owner's step-up check (追加認証): a one-time code by mail, then a 15-minute window."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from kagi_gateway.deps import current_caller, request_id
from kagi_gateway.services import Services
from kagi_shared.contracts.invite import StepUpIssuedOut, StepUpStateOut, StepUpVerifyIn

STEP_UP = ("owner", "viewer")  # a viewer-only account steps up before its withdrawal


class StepUpController(Controller):
    path = "/api/v1/me/step-up"
    tags = ("step-up",)

    @post("/", opt={"roles": STEP_UP}, status_code=201, summary="Mail a one-time code to the registered address")
    async def issue(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> StepUpIssuedOut:
        return await services.invite.issue_step_up(current_caller(request), rid=request_id(request))

    @post("/verify", opt={"roles": STEP_UP, "rate": "guess"}, status_code=200, summary="Verify the one-time code")
    async def verify(self, data: JSONBody[StepUpVerifyIn], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> StepUpStateOut:
        return await services.invite.verify_step_up(current_caller(request), data, rid=request_id(request))

    @get("/", opt={"roles": STEP_UP}, summary="Whether this session has a step-up window open")
    async def state(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> StepUpStateOut:
        return await services.invite.step_up(current_caller(request), rid=request_id(request))
