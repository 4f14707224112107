"""Operator tools: the delivery log."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from kagi_gateway.deps import Call
from kagi_shared.contracts.notify import MailDeliveryOut


class OperatorController(Controller):
    path = "/api/v1/operator"
    tags = ("operator",)

    @get("/deliveries", opt={"roles": ("operator",)}, summary="Mail and SMS deliveries to one recipient")
    async def deliveries(self, call: NamedDependency[Call],
                         recipient: Annotated[str, Parameter(min_length=3, max_length=254)]) -> list[MailDeliveryOut]:
        return await call.notify.deliveries(call.caller, recipient, rid=call.rid)
