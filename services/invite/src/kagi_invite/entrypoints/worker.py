"""Invite's worker: relays its outbox (lifecycle purges and withdrawals arrive with the invite issue)."""

from __future__ import annotations

from kagi_invite.bootstrap import NAME
from kagi_shared.settings import get_settings
from kagi_shared.worker import WorkerRuntime


def main() -> None:
    runtime = WorkerRuntime(NAME, get_settings())
    runtime.relay_outbox()
    runtime.run()


if __name__ == "__main__":
    main()
