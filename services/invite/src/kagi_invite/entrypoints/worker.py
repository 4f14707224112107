"""Invite's worker: contract data from ``contracts.upserted``, lifecycle purges, and the outbox relay."""

from __future__ import annotations

from typing import Any

from kagi_invite.bootstrap import NAME, Invite, bootstrap
from kagi_shared.events import invite as iev
from kagi_shared.events import lifecycle as lev
from kagi_shared.events.envelope import Envelope
from kagi_shared.inbox import DeadLetterSink, InboxConsumer
from kagi_shared.mongo import Tx
from kagi_shared.settings import Settings, get_settings
from kagi_shared.topics import CONTRACTS_UPSERTED, LIFECYCLE_EVENTS
from kagi_shared.worker import WorkerRuntime


def contracts(invite: Invite, dead_letter: DeadLetterSink, settings: Settings) -> InboxConsumer:
    async def on_contract(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, iev.ContractUpserted)
        await invite.locations.ingest(tx, event)

    async def on_water_contract(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, iev.WaterContractUpserted)
        await invite.claims.ingest(tx, event)

    return InboxConsumer("invite.contracts", invite.store, {iev.ContractUpserted: on_contract,
                                                            iev.WaterContractUpserted: on_water_contract},
                         dead_letter, settings)


def purges(invite: Invite, dead_letter: DeadLetterSink, settings: Settings) -> InboxConsumer:
    async def on_purged(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, lev.AccountPurged)
        await invite.invitations_repo.remove_account(tx, event.account_id)
        await invite.locations.forget_account(tx, event.account_id)
        await invite.claims_repo.remove_all(tx, event.account_id)

    return InboxConsumer("invite.purges", invite.store, {lev.AccountPurged: on_purged}, dead_letter, settings)


def main() -> None:
    settings = get_settings()
    runtime = WorkerRuntime(NAME, settings)
    invite = bootstrap(settings, runtime.store)
    runtime.consume(CONTRACTS_UPSERTED.name, contracts(invite, runtime.dead_letter, settings))
    runtime.consume(LIFECYCLE_EVENTS.name, purges(invite, runtime.dead_letter, settings))

    async def indexes() -> None:
        await invite.start()

    runtime.task(indexes)
    runtime.relay_outbox()
    runtime.run()


if __name__ == "__main__":
    main()
