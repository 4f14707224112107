"""Refresh tokens and logout.

A login opens a session *family*; its refresh token (random, stored only as a keyed hash) is
single-use: each refresh rotates it. Presenting a used refresh token again means it was copied,
so the whole family is revoked (OAuth 2.0 Security BCP, refresh token rotation). Logout revokes
the family and bumps the account's session version, which the gateway checks on every request,
so the access tokens of the account stop working at once.

Rotation slides the refresh token's own expiry, but a family lives at most
``refresh_absolute_ttl_s`` from its login: a stolen refresh token cannot keep a session alive forever.
The family id is the session id the access tokens carry (``sid``); step-up windows belong to it.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from kagi_lifecycle.adapters.refresh_tokens import RefreshToken, RefreshTokenRepository
from kagi_lifecycle.domain.accounts import Account
from kagi_lifecycle.domain.sessions import SessionPolicy
from kagi_lifecycle.service.accounts import AccountService
from kagi_shared import codes
from kagi_shared.mongo import Tx
from kagi_shared.problems import Problem

INVALID = Problem(401, "auth.refresh_invalid", "セッションの有効期限が切れました。再度ログインしてください。")


class SessionService:
    def __init__(self, lifecycle: AccountService, tokens: RefreshTokenRepository, policy: SessionPolicy) -> None:
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.tokens = tokens
        self.policy = policy

    def _hash(self, token: str) -> str:
        return codes.hash_token(token, self.lifecycle.settings.security.code_pepper)

    async def open(self, account: Account, family: str | None = None,
                   started_at: datetime | None = None) -> tuple[str, datetime, str]:
        """A refresh token for a new family (a login) or the next one of ``family``; with the family id."""
        token = secrets.token_urlsafe(32)
        now = self.lifecycle.clock()
        started_at = started_at or now
        expires = self.policy.expires_at(now, started_at)
        family = family or str(uuid.uuid4())
        await self.tokens.add(RefreshToken(id=self._hash(token), account_id=account.id, family=family,
                                           expires_at=expires, started_at=started_at,
                                           session_version=account.session_version))
        return token, expires, family

    async def refresh(self, token: str) -> tuple[Account, str, datetime, str]:
        now = self.lifecycle.clock()
        used = await self.tokens.use(self._hash(token), now)
        if used is None:
            reused = await self.tokens.get(self._hash(token))
            if reused is not None:  # a second use: the token was copied; end the whole family
                await self.tokens.end_family(reused.family)
            raise INVALID
        account = await self.lifecycle.accounts.get(used.account_id)
        started_at = self.policy.family_start(used.started_at, used.expires_at)
        if (not self.policy.usable(used.expires_at, started_at, now) or account is None
                or account.status != "active" or account.session_version != used.session_version):
            raise INVALID
        new_token, expires, family = await self.open(account, used.family, started_at)
        return account, new_token, expires, family

    async def logout(self, account_id: str, token: str | None) -> None:
        if token:
            found = await self.tokens.get(self._hash(token))
            if found is not None and found.account_id == account_id:
                await self.tokens.end_family(found.family)

        async def bump(tx: Tx) -> None:
            await self.lifecycle.accounts.end_sessions(tx, account_id)

        await self.store.transaction(bump)
