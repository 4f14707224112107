"""Lifecycle's internal routes for the gateway's OpenID Provider: clients, codes, signing keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import get, post
from litestar.params import FromPath, JSONBody

from kagi_lifecycle.service.oidc import OidcService
from kagi_shared.problems import Problem

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Uri = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]


class Dto(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class ClientOut(Dto):
    client_id: str
    name: str
    system: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]


class CodeIn(Dto):
    client_id: Short
    account_id: Short
    redirect_uri: Uri
    code_challenge: Annotated[str, msgspec.Meta(min_length=43, max_length=128)]
    scope: Short
    auth_time: datetime
    session_version: int
    nonce: Short | None = None


class CodeOut(Dto):
    code: str


class RedeemIn(Dto):
    client_id: Short
    client_secret: Short
    code: Short
    redirect_uri: Uri
    code_verifier: Annotated[str, msgspec.Meta(min_length=43, max_length=128)]
    """RFC 7636 §4.1: 43 to 128 characters."""


class GrantOut(Dto):
    client: ClientOut
    account_id: str
    nonce: str | None
    scope: str
    auth_time: datetime
    session_version: int


class KeyOut(Dto):
    kid: str
    jwk: dict[str, str]
    """The private JWK: only the gateway, which signs, reads this route."""
    created_at: datetime
    retired_at: datetime | None


class KeysOut(Dto):
    keys: list[KeyOut]
    """Current key first, then retired keys still valid for verification."""


def client_out(client: Any) -> ClientOut:
    return ClientOut(client_id=client.id, name=client.name, system=client.system, redirect_uris=client.redirect_uris,
                     post_logout_redirect_uris=client.post_logout_redirect_uris)


def oidc_handlers(oidc: Callable[[], OidcService]) -> list[Any]:
    @get("/internal/oidc/clients/{client_id:str}")
    async def get_client(client_id: FromPath[str]) -> ClientOut:
        client = await oidc().client(client_id)
        if client is None:
            raise Problem(404, "oidc.client_not_found", "クライアントが登録されていません。")
        return client_out(client)

    @post("/internal/oidc/codes", status_code=201)
    async def issue_code(data: JSONBody[CodeIn]) -> CodeOut:
        return CodeOut(code=await oidc().issue_code(
            client_id=data.client_id, account_id=data.account_id, redirect_uri=data.redirect_uri,
            code_challenge=data.code_challenge, nonce=data.nonce, scope=data.scope, auth_time=data.auth_time,
            session_version=data.session_version))

    @post("/internal/oidc/codes/redeem", status_code=200)
    async def redeem_code(data: JSONBody[RedeemIn]) -> GrantOut:
        client, grant = await oidc().redeem_code(client_id=data.client_id, client_secret=data.client_secret,
                                                 code=data.code, redirect_uri=data.redirect_uri,
                                                 code_verifier=data.code_verifier)
        return GrantOut(client=client_out(client), account_id=grant.account_id, nonce=grant.nonce,
                        scope=grant.scope, auth_time=grant.auth_time, session_version=grant.session_version)

    @get("/internal/oidc/keys")
    async def keys() -> KeysOut:
        return KeysOut(keys=[KeyOut(kid=k.id, jwk=jwk, created_at=k.created_at, retired_at=k.retired_at)
                             for k, jwk in await oidc().signing_keys()])

    return [get_client, issue_code, redeem_code, keys]
