"""Lifecycle's internal routes for the gateway's OpenID Provider: clients, codes, signing keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import get, post
from litestar.params import FromPath, JSONBody

from kagi_lifecycle.service.oidc import OidcService
from kagi_shared.contracts.lifecycle import (
    ClientOut,
    CodeIn,
    CodeOut,
    CodeRedeemIn,
    GrantOut,
    SigningKeyOut,
    SigningKeysOut,
)
from kagi_shared.problems import Problem


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
    async def redeem_code(data: JSONBody[CodeRedeemIn]) -> GrantOut:
        client, grant = await oidc().redeem_code(client_id=data.client_id, client_secret=data.client_secret,
                                                 code=data.code, redirect_uri=data.redirect_uri,
                                                 code_verifier=data.code_verifier)
        return GrantOut(client=client_out(client), account_id=grant.account_id, nonce=grant.nonce,
                        scope=grant.scope, auth_time=grant.auth_time, session_version=grant.session_version)

    @get("/internal/oidc/keys")
    async def keys() -> SigningKeysOut:
        return SigningKeysOut(keys=[SigningKeyOut(kid=k.id, jwk=jwk, created_at=k.created_at, retired_at=k.retired_at)
                             for k, jwk in await oidc().signing_keys()])

    return [get_client, issue_code, redeem_code, keys]
