"""Composition root of the invite service."""

from __future__ import annotations

from dataclasses import dataclass

from kagi_invite.adapters.repository import StepUpRepository
from kagi_invite.service.step_up import StepUpService
from kagi_shared.mongo import Store, database_name, make_client
from kagi_shared.settings import Settings

NAME = "invite"


@dataclass
class Invite:
    store: Store
    step_ups: StepUpRepository
    step_up: StepUpService

    async def start(self) -> None:
        await self.step_ups.ensure_indexes()
        await self.store.ensure_outbox_indexes()

    async def close(self) -> None:
        await self.store.client.close()


def bootstrap(settings: Settings, store: Store | None = None) -> Invite:
    store = store or Store(make_client(settings), database_name(settings, NAME))
    repo = StepUpRepository(store)
    return Invite(store, repo, StepUpService(store, repo, settings))
