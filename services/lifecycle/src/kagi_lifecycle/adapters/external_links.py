"""External IDs (SNS連携) in MongoDB (collection ``external_links``): one document per (provider, subject)."""

from __future__ import annotations

import msgspec
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from kagi_lifecycle.domain.federation import ExternalLink, LinkedElsewhere
from kagi_shared.mongo import CollectionRepository, Tx

EXTERNAL_LINKS = "external_links"


def _id(provider: str, subject: str) -> str:
    return f"{provider}|{subject}"


class ExternalLinkRepository(CollectionRepository):
    COLLECTION = EXTERNAL_LINKS
    INDEXES = (IndexModel([("account_id", ASCENDING), ("provider", ASCENDING)], unique=True),)

    async def of_account(self, account_id: str) -> list[ExternalLink]:
        """The account's links, by provider."""
        return [msgspec.convert({k: v for k, v in d.items() if k != "_id"}, ExternalLink)
                async for d in self.collection.find({"account_id": account_id}, sort=[("provider", ASCENDING)])]

    async def owner(self, provider: str, subject: str) -> str | None:
        """The account the external ID is linked to."""
        found = await self.collection.find_one({"_id": _id(provider, subject)})
        return str(found["account_id"]) if found else None

    async def put(self, link: ExternalLink) -> None:
        """Make ``link`` the account's only one for its provider; ``LinkedElsewhere`` when another account holds
        the external ID (also when it won a race for it)."""
        await self.collection.delete_many({"account_id": link.account_id, "provider": link.provider})
        try:
            await self.collection.insert_one({"_id": _id(link.provider, link.subject),
                                              **msgspec.structs.asdict(link)})
        except DuplicateKeyError:
            raise LinkedElsewhere(link.account_id) from None

    async def add(self, tx: Tx, link: ExternalLink) -> None:
        """A new account's first link, in its transaction; ``LinkedElsewhere`` when the external ID is taken."""
        try:
            await self.collection.insert_one({"_id": _id(link.provider, link.subject),
                                              **msgspec.structs.asdict(link)}, session=tx.session)
        except DuplicateKeyError:
            raise LinkedElsewhere(link.account_id) from None

    async def remove(self, account_id: str, provider: str) -> bool:
        result = await self.collection.delete_many({"account_id": account_id, "provider": provider})
        return result.deleted_count > 0
