"""Lifecycle's worker: relays its outbox. (External logins on ``auth.logins`` arrive with the lifecycle issue.)"""

from __future__ import annotations

from kagi_lifecycle.bootstrap import NAME
from kagi_shared.settings import get_settings
from kagi_shared.worker import WorkerRuntime


def main() -> None:
    runtime = WorkerRuntime(NAME, get_settings())
    runtime.relay_outbox()
    runtime.run()


if __name__ == "__main__":
    main()
