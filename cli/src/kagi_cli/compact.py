"""The compact process: every service's internal API in one process, one port, one ``/ready``.

For a laptop or a small installation (``KAGI_TOPOLOGY=compact``), like the monolithic target of Grafana Mimir or
Loki: the same ``service_api`` of each service, each mounted under ``/<service>`` (two services both answer
``/internal/deliveries``), so the routes, guards and use cases are the ones the split processes run. Callers find
it through ``Settings.service_url``, which adds the prefix in compact mode.

The workers are not hosted here: a faust worker owns its process (``App.main`` runs the event loop, installs the
signal handlers and holds one consumer group and one set of agents per app), and five faust apps in one loop would
be a second way of running them rather than the same code path. Kubernetes keeps one Deployment per process.
"""

from __future__ import annotations

from litestar import Litestar

from kagi_shared.service_api import ServiceApi, run_service_api, service_app
from kagi_shared.settings import Settings


def service_apis(settings: Settings) -> list[ServiceApi]:
    from kagi_audit.entrypoints.api import service_api as audit
    from kagi_invite.entrypoints.api import service_api as invite
    from kagi_lifecycle.entrypoints.api import service_api as lifecycle
    from kagi_notify.entrypoints.api import service_api as notify
    from kagi_permissions.entrypoints.api import service_api as permissions

    return [lifecycle(settings), invite(settings), permissions(settings), notify(settings), audit(settings)]


def create_app(settings: Settings) -> Litestar:
    return service_app(settings, *service_apis(settings))


def main() -> None:
    run_service_api("compact", create_app)


if __name__ == "__main__":
    main()
