"""The OpenID Provider's clients, authorization codes and signing keys in MongoDB (database ``kagi_lifecycle``)."""

from __future__ import annotations

from pymongo import ASCENDING

from kagi_lifecycle.domain.oidc import AuthorizationCode, OidcClient, SigningKey
from kagi_shared.mongo import Store, doc_struct, struct_doc

CLIENTS = "oidc_clients"
CODES = "oidc_codes"
KEYS = "oidc_keys"


class OidcRepository:
    def __init__(self, store: Store) -> None:
        self.clients = store.db[CLIENTS]
        self.codes = store.db[CODES]
        self.keys = store.db[KEYS]

    async def ensure_indexes(self) -> None:
        await self.codes.create_index([("expires_at", ASCENDING)])
        await self.keys.create_index([("created_at", ASCENDING)])

    async def add_client(self, client: OidcClient) -> None:
        await self.clients.insert_one(struct_doc(client))

    async def client(self, client_id: str) -> OidcClient | None:
        doc = await self.clients.find_one({"_id": client_id})
        return doc_struct(doc, OidcClient) if doc else None

    async def list_clients(self) -> list[OidcClient]:
        return [doc_struct(doc, OidcClient) async for doc in self.clients.find({}, sort=[("created_at", ASCENDING)])]

    async def add_code(self, code: AuthorizationCode) -> None:
        await self.codes.insert_one(struct_doc(code))

    async def take_code(self, code_hash: str) -> AuthorizationCode | None:
        """The code, removed in the same step: a second redemption finds nothing (single use, RFC 6749 §4.1.2)."""
        doc = await self.codes.find_one_and_delete({"_id": code_hash})
        return doc_struct(doc, AuthorizationCode) if doc else None

    async def add_key(self, key: SigningKey) -> None:
        await self.keys.insert_one(struct_doc(key))

    async def all_keys(self) -> list[SigningKey]:
        return [doc_struct(doc, SigningKey) async for doc in self.keys.find({}, sort=[("created_at", ASCENDING)])]

    async def retire_keys(self, keep: str, when: object) -> None:
        await self.keys.update_many({"_id": {"$ne": keep}, "retired_at": None}, {"$set": {"retired_at": when}})
