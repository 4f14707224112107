"""Sliding-window rate limits kept in MongoDB, so every API replica counts the same hits."""

from __future__ import annotations

from datetime import datetime, timedelta

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from kagi_shared.mongo import CollectionRepository
from kagi_shared.problems import Problem

RATE_HITS = "rate_hits"


class RateLimiter(CollectionRepository):
    COLLECTION = RATE_HITS
    INDEXES = (IndexModel([("key", ASCENDING), ("at", ASCENDING)]),
               IndexModel([("at", ASCENDING)], expireAfterSeconds=24 * 3600))

    async def hit_per_caller(self, key: str, per_key: int, scope: str, client_ip: str | None, per_ip: int,
                             window_s: int, now: datetime) -> None:
        """``hit`` on ``key`` and, when the client's address is known, on ``{scope}:ip:{address}`` too."""
        keys = [(key, per_key)]
        if client_ip:
            keys.append((f"{scope}:ip:{client_ip}", per_ip))
        await self.hit(keys, window_s, now)

    async def hit(self, keys: list[tuple[str, int]], window_s: int, now: datetime) -> None:
        """Count one hit on every key, or refuse (429) if that makes more than ``limit`` hits in the window.

        Insert first, then count: a burst of concurrent calls each sees the others' hits, so no more than
        ``limit`` pass (counting first let every call of a burst see the same old count). A refused call
        takes its hits back, so refusals do not extend the wait."""
        since = now - timedelta(seconds=window_s)
        marker = ObjectId()
        docs = [{"key": key, "at": now, "call": marker} for key, _ in keys]
        await self.collection.insert_many(docs)
        for key, limit in keys:
            if await self.collection.count_documents({"key": key, "at": {"$gt": since}}) > limit:
                await self.collection.delete_many({"call": marker})
                raise Problem(429, "rate_limited", "リクエストが多すぎます。しばらくしてから再度お試しください。",
                              headers={"Retry-After": str(window_s)})
