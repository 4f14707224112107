"""Lifecycle's worker: the daily inactivity sweep (faust crontab), external logins from ``auth.logins``,
withdrawals (退会) from ``invite.events``, permission changes from ``permissions.events``
(認証情報登録 and disabling), the outbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import faust

from kagi_lifecycle.bootstrap import NAME, Lifecycle, bootstrap
from kagi_shared.events import invite as inv
from kagi_shared.events import lifecycle as ev
from kagi_shared.events import permissions as pev
from kagi_shared.events.envelope import Envelope
from kagi_shared.inbox import DeadLetterSink, InboxConsumer
from kagi_shared.logging import get_logger
from kagi_shared.mongo import Tx
from kagi_shared.settings import Settings, get_settings
from kagi_shared.topics import AUTH_LOGINS, INVITE_EVENTS, PERMISSIONS_EVENTS
from kagi_shared.worker import WorkerRuntime

log = get_logger(__name__)


def external_logins(lifecycle: Lifecycle, dead_letter: DeadLetterSink, settings: Settings) -> InboxConsumer:
    async def on_login(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, ev.ExternalLoginReported)
        await lifecycle.service.external_login(tx, event, envelope.correlationid)

    return InboxConsumer("lifecycle.external_logins", lifecycle.store, {ev.ExternalLoginReported: on_login},
                         dead_letter, settings)


def withdrawals(lifecycle: Lifecycle, dead_letter: DeadLetterSink, settings: Settings) -> InboxConsumer:
    async def on_withdrawn(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, inv.Withdrawn)
        await lifecycle.registrations.withdraw(tx, event.account_id, envelope.correlationid)

    return InboxConsumer("lifecycle.withdrawals", lifecycle.store, {inv.Withdrawn: on_withdrawn}, dead_letter,
                         settings)


def access_changes(lifecycle: Lifecycle, dead_letter: DeadLetterSink, settings: Settings) -> InboxConsumer:
    """Permissions drive B2B accounts: a first grant enrols the ID, losing every permission disables it."""
    async def on_access_changed(envelope: Envelope, event: Any, tx: Tx) -> None:
        assert isinstance(event, pev.AccessChanged)
        await lifecycle.enrolments.on_access_changed(tx, event, envelope.correlationid)

    return InboxConsumer("lifecycle.access_changes", lifecycle.store, {pev.AccessChanged: on_access_changed},
                         dead_letter, settings)


def schedule_sweep(app: faust.App, lifecycle: Lifecycle, settings: Settings) -> Callable[[], Awaitable[None]]:
    """Register the daily inactivity sweep on ``app`` at the configured crontab and time zone."""
    lc = settings.lifecycle

    # Every worker may run it: each account is re-read and changed in its own transaction, so two
    # sweeps at once apply each stage once (no dependence on faust's leader election).
    @app.crontab(lc.sweep_cron, timezone=ZoneInfo(lc.sweep_timezone))
    async def inactivity_sweep() -> None:
        await lifecycle.start()
        result = await lifecycle.sweeps.sweep(datetime.now(UTC))
        log.info("lifecycle.scheduled_sweep", **result.as_json())

    # faust types ``crontab`` as returning a bare Callable; what it registers is the task faust starts.
    registered: Callable[[], Awaitable[None]] = inactivity_sweep
    return registered


def main() -> None:
    settings = get_settings()
    runtime = WorkerRuntime(NAME, settings)
    lifecycle = bootstrap(settings, runtime.store)
    runtime.consume(AUTH_LOGINS.name, external_logins(lifecycle, runtime.dead_letter, settings))
    runtime.consume(INVITE_EVENTS.name, withdrawals(lifecycle, runtime.dead_letter, settings))
    runtime.consume(PERMISSIONS_EVENTS.name, access_changes(lifecycle, runtime.dead_letter, settings))
    schedule_sweep(runtime.app, lifecycle, settings)
    runtime.relay_outbox()
    runtime.run()


if __name__ == "__main__":
    main()
