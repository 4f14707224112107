"""Composition root of the permissions service."""

from __future__ import annotations

from dataclasses import dataclass

from kagi_shared.mongo import Store, database_name, make_client
from kagi_shared.settings import Settings

NAME = "permissions"


@dataclass
class Permissions:
    store: Store

    async def start(self) -> None:
        await self.store.ensure_outbox_indexes()

    async def close(self) -> None:
        await self.store.client.close()


def bootstrap(settings: Settings, store: Store | None = None) -> Permissions:
    return Permissions(store or Store(make_client(settings), database_name(settings, NAME)))
