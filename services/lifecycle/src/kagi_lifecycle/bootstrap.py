"""Composition root of the lifecycle service."""

from __future__ import annotations

from dataclasses import dataclass

from kagi_lifecycle.adapters.passwords import Passwords
from kagi_lifecycle.adapters.repository import AccountRepository
from kagi_lifecycle.service.handlers import LifecycleService
from kagi_shared.mongo import Store, database_name, make_client
from kagi_shared.settings import Settings

NAME = "lifecycle"


@dataclass
class Lifecycle:
    store: Store
    accounts: AccountRepository
    service: LifecycleService

    async def start(self) -> None:
        await self.accounts.ensure_indexes()
        await self.store.ensure_outbox_indexes()

    async def close(self) -> None:
        await self.store.client.close()


def bootstrap(settings: Settings, store: Store | None = None) -> Lifecycle:
    store = store or Store(make_client(settings), database_name(settings, NAME))
    accounts = AccountRepository(store)
    return Lifecycle(store, accounts, LifecycleService(store, accounts, Passwords(settings.security), settings))
