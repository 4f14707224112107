"""Operator tools: the delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from kagi_gateway.deps import current_caller, request_id
from kagi_gateway.services import Services
from kagi_shared.contracts.notify import MailDeliveryOut


class OperatorController(Controller):
    path = "/api/v1/operator"
    tags = ("operator",)

    @get("/deliveries", opt={"roles": ("operator",)}, summary="Mail and SMS deliveries to one recipient")
    async def deliveries(self, services: NamedDependency[Services], request: Request[Any, Any, Any],
                         recipient: Annotated[str, Parameter(min_length=3, max_length=254)]) -> list[MailDeliveryOut]:
        return await services.notify.deliveries(current_caller(request), recipient, rid=request_id(request))
