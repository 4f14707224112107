"""The owner's step-up check (追加認証): a one-time code by mail, then a 15-minute window."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from kagi_gateway.deps import Call
from kagi_shared.contracts.invite import StepUpIssuedOut, StepUpStateOut, StepUpVerifyIn

STEP_UP = ("owner", "viewer")  # a viewer-only account steps up before its withdrawal


class StepUpController(Controller):
    path = "/api/v1/me/step-up"
    tags = ("step-up",)

    @post("/", opt={"roles": STEP_UP}, status_code=201, summary="Mail a one-time code to the registered address")
    async def issue(self, call: NamedDependency[Call]) -> StepUpIssuedOut:
        return await call.invite.issue_step_up(call.caller, rid=call.rid)

    @post("/verify", opt={"roles": STEP_UP, "rate": "guess"}, status_code=200, summary="Verify the one-time code")
    async def verify(self, data: JSONBody[StepUpVerifyIn], call: NamedDependency[Call]) -> StepUpStateOut:
        return await call.invite.verify_step_up(call.caller, data, rid=call.rid)

    @get("/", opt={"roles": STEP_UP}, summary="Whether this session has a step-up window open")
    async def state(self, call: NamedDependency[Call]) -> StepUpStateOut:
        return await call.invite.step_up(call.caller, rid=call.rid)
