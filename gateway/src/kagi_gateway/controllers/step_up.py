"""The owner's step-up check (追加認証): a one-time code by mail, then a 15-minute window."""

from __future__ import annotations

from litestar import get, post

from kagi_gateway.forward import ApiController, forward
from kagi_shared.contracts.invite import InviteClient

STEP_UP = ("owner", "viewer")  # a viewer-only account steps up before its withdrawal


class StepUpController(ApiController):
    path = "/api/v1/me/step-up"
    tags = ("step-up",)

    issue = forward(post("/", opt={"roles": STEP_UP, "idempotent": True}, status_code=201,
                         summary="Mail a one-time code to the registered address"), InviteClient.issue_step_up)
    verify = forward(post("/verify", opt={"roles": STEP_UP, "rate": "guess"}, status_code=200,
                          summary="Verify the one-time code"), InviteClient.verify_step_up)
    state = forward(get("/", opt={"roles": STEP_UP}, summary="Whether this session has a step-up window open"),
                    InviteClient.step_up)
