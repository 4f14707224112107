"""Permissions' internal API. Companies, requests and the calendar arrive with the permissions issue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

from kagi_permissions.bootstrap import NAME, Permissions, bootstrap
from kagi_shared.service_api import create_service_app, run_service_api
from kagi_shared.settings import get_settings


def create_app(permissions: Permissions | None = None) -> Litestar:
    state: dict[str, Permissions] = {}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        state["app"] = permissions or bootstrap(get_settings())
        await state["app"].start()
        try:
            yield
        finally:
            if permissions is None:
                await state["app"].close()

    async def ready() -> None:
        await state["app"].store.ping()

    return create_service_app(NAME, [], ready=ready, lifespan=[lifespan])


def main() -> None:
    run_service_api(NAME, create_app)


if __name__ == "__main__":
    main()
