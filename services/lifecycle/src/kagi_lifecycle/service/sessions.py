"""Refresh tokens and logout.

A login opens a session *family*; its refresh token (random, stored only as a keyed hash) is
single-use: each refresh rotates it. Presenting a used refresh token again means it was copied,
so the whole family is revoked (OAuth 2.0 Security BCP, refresh token rotation). Logout revokes
the family and bumps the account's session version, which the gateway checks on every request,
so the access tokens of the account stop working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta

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

    async def ensure_indexes(self) -> None:
        await self.tokens.create_index([("family", ASCENDING)])
        await self.tokens.create_index([("account_id", ASCENDING)])

    def _hash(self, token: str) -> str:
        pepper = self.lifecycle.settings.security.code_pepper.encode()
        return hmac.new(pepper, token.encode(), hashlib.sha256).hexdigest()

    async def open(self, account: Account, family: str | None = None) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + self.ttl
        await self.tokens.insert_one({"_id": self._hash(token), "account_id": account.id,
                                      "family": family or str(uuid.uuid4()), "expires_at": expires,
                                      "session_version": account.session_version, "used": False})
        return token, expires

    async def refresh(self, token: str) -> tuple[Account, str, datetime]:
        now = datetime.now(UTC)
        doc = await self.tokens.find_one_and_update({"_id": self._hash(token), "used": False},
                                                    {"$set": {"used": True, "used_at": now}},
                                                    return_document=ReturnDocument.BEFORE)
        if doc is None:
            reused = await self.tokens.find_one({"_id": self._hash(token)})
            if reused is not None:  # a second use: the token was copied; end the whole family
                await self.tokens.delete_many({"family": reused["family"]})
            raise INVALID
        account = await self.lifecycle.accounts.get(doc["account_id"])
        if (doc["expires_at"] <= now or account is None or account.status != "active"
                or account.session_version != doc["session_version"]):
            raise INVALID
        new_token, expires = await self.open(account, doc["family"])
        return account, new_token, expires

    async def logout(self, account_id: str, token: str | None) -> None:
        if token:
            doc = await self.tokens.find_one({"_id": self._hash(token), "account_id": account_id})
            if doc is not None:
                await self.tokens.delete_many({"family": doc["family"]})

        async def bump(tx: Tx) -> None:
            await self.lifecycle.accounts.update(tx, account_id, {}, bump_session=True)

        await self.store.transaction(bump)
