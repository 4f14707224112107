"""Notify's internal API: the delivery log for operators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, get
from litestar.params import Parameter

from kagi_notify.bootstrap import NAME, Notify, bootstrap
from kagi_shared.service_api import caller_of, create_service_app, internal_guard, require_role, run_service_api
from kagi_shared.settings import get_settings


class DeliveryOut(msgspec.Struct, rename="camel", kw_only=True):
    delivery_id: str
    template: str
    channel: str
    recipient: str
    category: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


def create_app(notify: Notify | None = None) -> Litestar:
    state: dict[str, Notify] = {}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        state["app"] = notify or bootstrap(get_settings())
        await state["app"].start()
        try:
            yield
        finally:
            if notify is None:
                await state["app"].close()

    @get("/internal/deliveries", guards=[internal_guard])
    async def deliveries(
        request: Request[Any, Any, Any],
        recipient: Annotated[str, Parameter(min_length=3, max_length=254)],
    ) -> list[DeliveryOut]:
        require_role(caller_of(request), "operator")
        found = await state["app"].deliveries.for_recipient(recipient)
        return [DeliveryOut(delivery_id=d.id, template=d.template, channel=d.channel, recipient=d.recipient,
                            category=d.category, status=d.status, attempts=d.attempts, created_at=d.created_at,
                            sent_at=d.sent_at, last_error=d.last_error) for d in found]

    async def ready() -> None:
        await state["app"].store.ping()

    return create_service_app(NAME, [deliveries], ready=ready, lifespan=[lifespan])


def main() -> None:
    run_service_api(NAME, create_app)


if __name__ == "__main__":
    main()
