"""Lifecycle's internal API: accounts and login, called by the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import msgspec
from litestar import Litestar, Request, get, post

from kagi_lifecycle.bootstrap import NAME, Lifecycle, bootstrap
from kagi_lifecycle.domain.accounts import Account
from kagi_shared.problems import Problem
from kagi_shared.service_api import create_service_app, internal_guard, run_service_api
from kagi_shared.settings import get_settings


class Dto(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class LoginIn(Dto):
    login_id: str
    password: str


class CreateAccountIn(Dto):
    login_id: str
    password: str
    roles: list[str]
    email: str | None = None


class AccountOut(Dto):
    account_id: str
    login_id: str
    email: str
    roles: list[str]
    status: str
    last_login_at: datetime | None
    issued_at: datetime


def account_out(account: Account) -> AccountOut:
    return AccountOut(account_id=account.id, login_id=account.login_id, email=account.email,
                      roles=account.roles, status=account.status, last_login_at=account.last_login_at,
                      issued_at=account.issued_at)


def _correlation(request: Request[Any, Any, Any]) -> str | None:
    return request.headers.get("x-request-id")


def create_app(lifecycle: Lifecycle | None = None) -> Litestar:
    state: dict[str, Lifecycle] = {}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        state["lc"] = lifecycle or bootstrap(get_settings())
        await state["lc"].start()
        try:
            yield
        finally:
            if lifecycle is None:
                await state["lc"].close()

    @post("/internal/login", guards=[internal_guard], status_code=200)
    async def login(data: LoginIn, request: Request[Any, Any, Any]) -> AccountOut:
        return account_out(await state["lc"].service.login(data.login_id, data.password, _correlation(request)))

    @post("/internal/accounts", guards=[internal_guard], status_code=201)
    async def create_account(data: CreateAccountIn, request: Request[Any, Any, Any]) -> AccountOut:
        account = await state["lc"].service.create_account(data.login_id, data.password, data.roles, data.email,
                                                           _correlation(request))
        return account_out(account)

    @get("/internal/accounts/{account_id:str}", guards=[internal_guard])
    async def get_account(account_id: str) -> AccountOut:
        account = await state["lc"].accounts.get(account_id)
        if account is None:
            raise Problem(404, "account.not_found", "アカウントが見つかりません。")
        return account_out(account)

    async def ready() -> None:
        await state["lc"].store.ping()

    return create_service_app(NAME, [login, create_account, get_account], ready=ready, lifespan=[lifespan])


def main() -> None:
    run_service_api(NAME, create_app)


if __name__ == "__main__":
    main()
