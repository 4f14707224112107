"""Use cases of the OpenID Provider: client registration (operator tool), authorization codes, signing keys.

The gateway speaks the protocol (discovery, authorize, token, userinfo); lifecycle keeps what must survive a
gateway restart and be shared by its replicas: who the clients are, the codes in flight, the signing keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import RSAKey

from kagi_lifecycle.adapters.oidc_repository import OidcRepository
from kagi_lifecycle.domain.oidc import (
    AuthorizationCode,
    OidcClient,
    OidcPolicy,
    SigningKey,
    check_registration,
    current_key,
    published_keys,
    redeemable,
)
from kagi_shared.clock import Clock
from kagi_shared.problems import FieldError, Problem
from kagi_shared.settings import Settings

INVALID_CLIENT = Problem(401, "oidc.invalid_client", "クライアント認証に失敗しました。",
                         headers={"WWW-Authenticate": 'Basic realm="kagi"'})
INVALID_GRANT = Problem(400, "oidc.invalid_grant", "認可コードが無効です。もう一度ログインしてください。")
KEY_BITS = 2048


class OidcService:
    def __init__(self, repo: OidcRepository, settings: Settings, clock: Clock, policy: OidcPolicy) -> None:
        self.repo = repo
        self.settings = settings
        self.clock = clock
        self.policy = policy
        pepper = settings.security.code_pepper.encode()
        self._pepper = pepper
        # The private keys are sealed with a key derived from the server secret: a copy of the database alone
        # signs nothing.
        self._seal = AESGCM(hashlib.sha256(b"kagi-oidc-signing-keys\x00" + pepper).digest())

    def _hash(self, value: str) -> str:
        return hmac.new(self._pepper, value.encode(), hashlib.sha256).hexdigest()

    # -- clients (operator tool) ---------------------------------------------------------------
    async def create_client(self, system: str, redirect_uris: list[str], name: str,
                            post_logout_redirect_uris: list[str] | None = None) -> tuple[OidcClient, str]:
        """A confidential client for one target system; its secret is returned once and stored only as an HMAC."""
        post_logout = post_logout_redirect_uris or []
        check_registration(system, redirect_uris, post_logout, name, allow_http=self.settings.env != "prod")
        secret = secrets.token_urlsafe(32)
        client = OidcClient(id=f"{system.lower()}-{secrets.token_hex(8)}", name=name, system=system,
                            redirect_uris=list(redirect_uris), post_logout_redirect_uris=post_logout,
                            secret_hash=self._hash(secret), created_at=self.clock())
        await self.repo.add_client(client)
        return client, secret

    async def client(self, client_id: str) -> OidcClient | None:
        found = await self.repo.client(client_id)
        return found if found is not None and found.status == "active" else None

    async def authenticate(self, client_id: str, secret: str) -> OidcClient:
        client = await self.client(client_id)
        # Compare against a hash even for an unknown client, so timing does not tell which IDs exist.
        stored = client.secret_hash if client is not None else self._hash("unknown-client")
        if not hmac.compare_digest(self._hash(secret), stored) or client is None:
            raise INVALID_CLIENT
        return client

    # -- authorization codes ----------------------------------------------------------------------
    async def issue_code(self, *, client_id: str, account_id: str, redirect_uri: str, code_challenge: str,
                         nonce: str | None, scope: str, auth_time: datetime, session_version: int) -> str:
        client = await self.client(client_id)
        if client is None or redirect_uri not in client.redirect_uris:
            raise Problem(400, "oidc.invalid_request", "クライアントまたはリダイレクトURIが登録されていません。",
                          errors=[FieldError("redirectUri", "not registered for this client")])
        code = secrets.token_urlsafe(32)
        await self.repo.add_code(AuthorizationCode(
            id=self._hash(code), client_id=client_id, account_id=account_id, redirect_uri=redirect_uri,
            code_challenge=code_challenge, nonce=nonce, scope=scope, auth_time=auth_time,
            session_version=session_version,
            expires_at=self.clock() + timedelta(seconds=self.policy.code_ttl_s)))
        return code

    async def redeem_code(self, *, client_id: str, client_secret: str, code: str, redirect_uri: str,
                          code_verifier: str) -> tuple[OidcClient, AuthorizationCode]:
        """The client proves itself, then the code (taken once), its redirect URI and its PKCE verifier."""
        client = await self.authenticate(client_id, client_secret)
        grant = await self.repo.take_code(self._hash(code))
        if grant is None or not redeemable(grant, client.id, redirect_uri, self.clock()):
            raise INVALID_GRANT
        if not hmac.compare_digest(create_s256_code_challenge(code_verifier), grant.code_challenge):
            raise INVALID_GRANT
        return client, grant

    # -- signing keys ----------------------------------------------------------------------------
    async def signing_keys(self) -> list[tuple[SigningKey, dict[str, str]]]:
        """Every published key with its private JWK (current first); the first call makes the first key."""
        keys = await self.repo.all_keys()
        if current_key(keys) is None:
            await self.rotate_key()
            keys = await self.repo.all_keys()
        current = current_key(keys)
        published = sorted(published_keys(keys, self.clock(), self.policy), key=lambda k: k is not current)
        return [(key, self._open(key)) for key in published]

    async def rotate_key(self) -> SigningKey:
        """A new current key; the old ones stay published until every token they signed has expired."""
        now = self.clock()
        kid = f"{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
        jwk = RSAKey.generate_key(KEY_BITS, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)
        key = SigningKey(id=kid, private_jwk=self._close(kid, jwk.as_dict(private=True)), created_at=now)
        await self.repo.add_key(key)
        await self.repo.retire_keys(kid, now)
        return key

    def _close(self, kid: str, jwk: Mapping[str, object]) -> dict[str, str]:
        nonce = os.urandom(12)
        sealed = self._seal.encrypt(nonce, json.dumps(jwk).encode(), kid.encode())
        return {"sealed": base64.urlsafe_b64encode(nonce + sealed).decode()}

    def _open(self, key: SigningKey) -> dict[str, str]:
        raw = base64.urlsafe_b64decode(key.private_jwk["sealed"])
        opened: dict[str, str] = json.loads(self._seal.decrypt(raw[:12], raw[12:], key.id.encode()))
        return opened
