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

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

from pymongo import ASCENDING, ReturnDocument

from kagi_lifecycle.domain.accounts import Account
from kagi_lifecycle.service.handlers import LifecycleService
from kagi_shared.mongo import Tx
from kagi_shared.problems import Problem

REFRESH_TOKENS = "refresh_tokens"
INVALID = Problem(401, "auth.refresh_invalid", "セッションの有効期限が切れました。再度ログインしてください。")


class SessionService:
    def __init__(self, lifecycle: LifecycleService) -> None:
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.tokens = self.store.db[REFRESH_TOKENS]
        self.ttl = timedelta(seconds=lifecycle.settings.security.refresh_token_ttl_s)
        self.absolute_ttl = timedelta(seconds=lifecycle.settings.security.refresh_absolute_ttl_s)

    async def ensure_indexes(self) -> None:
        await self.tokens.create_index([("family", ASCENDING)])
        await self.tokens.create_index([("account_id", ASCENDING)])

    def _hash(self, token: str) -> str:
        pepper = self.lifecycle.settings.security.code_pepper.encode()
        return hmac.new(pepper, token.encode(), hashlib.sha256).hexdigest()

    async def open(self, account: Account, family: str | None = None,
                   started_at: datetime | None = None) -> tuple[str, datetime, str]:
        """A refresh token for a new family (a login) or the next one of ``family``; with the family id."""
        token = secrets.token_urlsafe(32)
        now = self.lifecycle.clock()
        started_at = started_at or now
        expires = min(now + self.ttl, started_at + self.absolute_ttl)
        family = family or str(uuid.uuid4())
        await self.tokens.insert_one({"_id": self._hash(token), "account_id": account.id,
                                      "family": family, "expires_at": expires, "started_at": started_at,
                                      "session_version": account.session_version, "used": False})
        return token, expires, family

    async def refresh(self, token: str) -> tuple[Account, str, datetime, str]:
        now = self.lifecycle.clock()
        doc = await self.tokens.find_one_and_update({"_id": self._hash(token), "used": False},
                                                    {"$set": {"used": True, "used_at": now}},
                                                    return_document=ReturnDocument.BEFORE)
        if doc is None:
            reused = await self.tokens.find_one({"_id": self._hash(token)})
            if reused is not None:  # a second use: the token was copied; end the whole family
                await self.tokens.delete_many({"family": reused["family"]})
            raise INVALID
        account = await self.lifecycle.accounts.get(doc["account_id"])
        # A token from before the absolute lifetime existed counts from its own issue.
        started_at = doc.get("started_at") or doc["expires_at"] - self.ttl
        if (doc["expires_at"] <= now or started_at + self.absolute_ttl <= now or account is None
                or account.status != "active" or account.session_version != doc["session_version"]):
            raise INVALID
        new_token, expires, family = await self.open(account, doc["family"], started_at)
        return account, new_token, expires, family

    async def logout(self, account_id: str, token: str | None) -> None:
        if token:
            doc = await self.tokens.find_one({"_id": self._hash(token), "account_id": account_id})
            if doc is not None:
                await self.tokens.delete_many({"family": doc["family"]})

        async def bump(tx: Tx) -> None:
            await self.lifecycle.accounts.update(tx, account_id, {}, bump_session=True)

        await self.store.transaction(bump)
