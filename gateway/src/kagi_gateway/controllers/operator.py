"""Operator tools: the delivery log."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from kagi_gateway.deps import current_caller, request_id
from kagi_gateway.schemas import MailDeliveryOut
from kagi_gateway.services import Services


class OperatorController(Controller):
    path = "/api/v1/operator"
    tags = ("operator",)

    @get("/deliveries", opt={"roles": ("operator",)}, summary="Mail and SMS deliveries to one recipient")
    async def deliveries(self, services: NamedDependency[Services], request: Request[Any, Any, Any],
                         recipient: Annotated[str, Parameter(min_length=3, max_length=254)]) -> list[MailDeliveryOut]:
        reply = await services.call("notify", "GET", "/internal/deliveries", caller=current_caller(request),
                                    params={"recipient": recipient}, request_id=request_id(request))
        return msgspec.convert(reply, list[MailDeliveryOut])
