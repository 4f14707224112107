"""Test harness: the test run starts and stops its own embedded servers and processes.

Everything runs on free loopback ports under a temporary ``var`` directory, so a
`make run` on the same machine is never touched. Integration tests ask for ``settings``
(broker, database and SMTP sink up); end-to-end tests ask for ``system`` (every service
process and the gateway as well).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kagi_shared.settings import Settings, get_settings
from tests.ports import free_block, free_ports

_PORT_NAMES = ("kafka", "mongo", "smtp", "gateway", "lifecycle", "invite", "permissions", "notify", "audit",
               "compact", "gateway_metrics")


@pytest.fixture(scope="session")
def test_env() -> Iterator[dict[str, str]]:
    """Environment of the test run: free ports, a temporary var dir, fast test settings."""
    var_dir = Path(tempfile.mkdtemp(prefix="kagi-test-"))
    ports = free_ports(len(_PORT_NAMES))
    env = {f"KAGI_PORTS_{name.upper()}": str(port) for name, port in zip(_PORT_NAMES, ports, strict=True)}
    env.update({
        "KAGI_ENV": "test",
        "KAGI_VAR_DIR": str(var_dir),
        "KAGI_LOG_LEVEL": "INFO",
        # Cheaper argon2 in tests only: the algorithm and code path are the same.
        "KAGI_SECURITY_ARGON2_MEMORY_KIB": "8192",
        "KAGI_SECURITY_ARGON2_TIME_COST": "1",
        "KAGI_NOTIFY_RETRY_BASE_S": "0.5",
        "KAGI_OUTBOX_LEASE_TTL_S": "2",
        # Workers serve /health, /ready and /metrics on base + 1..5, as in a pod.
        "KAGI_PORTS_WORKER_METRICS_BASE": str(free_block(5)),
        "KAGI_PORTS_API_METRICS_BASE": str(free_block(5)),  # service APIs' /metrics, as in a pod
        "KAGI_HTTP_METRICS_REFRESH_S": "0",
        # One client address for every test and drill: per-IP invite limits would measure the suite, not the code
        # (their own tests build the service with the production limits).
        "KAGI_INVITE_REQUEST_PER_IP": "100000",
        "KAGI_INVITE_REDEEM_PER_IP": "100000",
        "KAGI_INVITE_CLAIM_FAILURES_PER_IP": "100000",
        # Every e2e request comes from 127.0.0.1: per-address limits are tested with their own addresses.
        "KAGI_EDGE_RATE_LOGIN_PER_IP": "100000",
        "KAGI_EDGE_RATE_GUESS_PER_IP": "100000",
        "KAGI_EDGE_RATE_DEFAULT_PER_IP": "100000",
        "KAGI_EDGE_LOGIN_FAILURES_PER_IP": "100000",
    })
    # Mailed links point at this run's gateway, so a browser test follows exactly the URL in the mail.
    env["KAGI_BRAND_PORTAL_URL"] = f"http://127.0.0.1:{env['KAGI_PORTS_GATEWAY']}"
    # The stand-in for LINE (panva's oidc-provider, tools/test-idp) listens here once a federation test starts it;
    # the one for Yahoo! JAPAN is a provider that forges its ID tokens (tests/e2e/forging_idp.py).
    line_port, yahoo_port = free_ports(2)
    env["KAGI_FEDERATION_PROVIDERS"] = json.dumps([
        {"id": "line", "displayName": "LINEでログイン", "issuer": f"http://127.0.0.1:{line_port}",
         "clientId": "kagi-test", "clientSecret": secrets.token_urlsafe(24), "scopes": "openid"},
        {"id": "yahoo", "displayName": "Yahoo! JAPAN IDでログイン", "issuer": f"http://127.0.0.1:{yahoo_port}",
         "clientId": "kagi-test-yahoo", "clientSecret": secrets.token_urlsafe(24), "scopes": "openid"}])
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI", "SMTP_URL"):
        if var in os.environ:  # a developer's shell pointing elsewhere must not leak into the tests
            env[var] = ""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings(test_env: dict[str, str]) -> Iterator[Settings]:
    """Broker, database and SMTP sink running; the settings that point at them."""
    from kagi_local.infra import Infra

    current = get_settings()
    infra = Infra(current)
    try:
        infra.up()
        yield current
    finally:
        infra.down()


@pytest.fixture(scope="session")
def system(settings: Settings) -> Iterator[str]:
    """Every service process and the gateway running; yields the gateway's base URL. With ``KAGI_TOPOLOGY=compact``
    in the environment one process serves every internal API (``tests/e2e/test_topology.py`` checks which ran)."""
    from kagi_cli.main import system_specs
    from kagi_local.infra import Infra

    infra = Infra(settings)
    specs = system_specs(settings)
    try:
        infra.up(specs)
        yield f"http://127.0.0.1:{settings.ports.gateway}"
    finally:
        infra.down(specs)


@pytest.fixture
async def store_factory(settings: Settings) -> AsyncIterator[object]:
    """Fresh databases per test: ``await store_factory('name')`` returns a Store on its own database."""
    import uuid

    from kagi_shared.mongo import Store, make_client

    client = make_client(settings)
    created: list[str] = []

    async def make(name: str = "t") -> Store:
        db_name = f"test_{name}_{uuid.uuid4().hex[:8]}"
        created.append(db_name)
        return Store(client, db_name)

    yield make
    for db_name in created:
        await client.drop_database(db_name)
    await client.close()


class ContractBackend:
    """One side of a repository's contract test: the in-memory adapter (the fast tier's) or the Mongo adapter on a
    fresh database of the embedded server."""

    def __init__(self, store_factory: Any) -> None:
        self.store_factory = store_factory

    async def open(self, memory: Any, mongo: Any) -> tuple[Any, Any]:
        """(transactions, repository): ``memory(MemoryTransactions())`` or ``mongo(store)`` with its indexes."""
        from kagi_shared.memory import MemoryTransactions

        if self.store_factory is None:
            transactions = MemoryTransactions()
            return transactions, memory(transactions)
        store = await self.store_factory("contract")
        repository = mongo(store)
        await repository.ensure_indexes()
        return store, repository


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def contract_backend(request: pytest.FixtureRequest) -> ContractBackend:
    """Runs a contract test once per side; the Mongo side is marked integration."""
    return ContractBackend(request.getfixturevalue("store_factory") if request.param == "mongo" else None)


def pytest_configure(config: pytest.Config) -> None:
    """A run ended by SIGTERM (a CI cancel, ``timeout``) unwinds like Ctrl-C: pytest's session teardown then
    stops the servers and services this run started, instead of leaving them running without a parent."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tiers by the fixtures they use, so `-m "not integration and not e2e"` runs the fast tier."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "system" in fixtures:
            item.add_marker(pytest.mark.e2e)
        elif "settings" in fixtures or "store_factory" in fixtures:
            item.add_marker(pytest.mark.integration)


# -- the contract between the services that ask for mail and notify's templates ----------------------------------
# Every notification a service's code asks for in this run (through ``Tx.publish``, so the flows the integration
# tests drive in-process) is checked against notify's catalogue at once: an unknown template or a variable the
# template needs and the service does not send would otherwise surface only when notify renders it, as a mail
# that never reaches the user. The test that drove the flow fails, naming the template and the variables.
_NOTICE_PROBLEMS: list[str] = []
_NOTICES_SEEN: set[str] = set()
_TEMPLATES: set[str] = set()


@pytest.fixture(scope="session", autouse=True)
def _notification_contract() -> Iterator[None]:
    from kagi_notify.adapters.template_files import read_catalogue
    from kagi_notify.domain.templates import TemplateError
    from kagi_shared.events import decode_data, event_type
    from kagi_shared.events import notify as nev
    from kagi_shared.mongo import Tx
    from kagi_shared.sealing import SealError
    from kagi_shared.settings import DEV_SECRETS

    catalogue = read_catalogue(brand="Kagi", portal_url="https://kagi.example.jp")
    _TEMPLATES.update(catalogue.specs)
    wanted = event_type(nev.NotificationRequested)
    original = Tx.publish

    def publish(self: Tx, topic: str, envelope: object) -> None:
        if getattr(envelope, "type", None) == wanted:
            sealed = decode_data(envelope)  # type: ignore[arg-type]
            assert isinstance(sealed, nev.NotificationRequested)
            try:  # the very rules notify applies when it sends: it opens, a known template, every variable
                request = nev.opened(DEV_SECRETS["notify_key"], sealed)
                spec = catalogue.spec(request.template)
                catalogue.render(request.template, request.variables)
            except (TemplateError, SealError) as exc:
                _NOTICE_PROBLEMS.append(str(exc))
            else:
                _NOTICES_SEEN.add(request.template)
                if spec.channel != request.channel:
                    _NOTICE_PROBLEMS.append(f"{request.template}: a {spec.channel} template asked for by "
                                            f"{request.channel}")
        original(self, topic, envelope)  # type: ignore[arg-type]

    Tx.publish = publish  # type: ignore[method-assign]
    try:
        yield
    finally:
        Tx.publish = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _notifications_match_templates(_notification_contract: None) -> Iterator[None]:
    _NOTICE_PROBLEMS.clear()
    yield
    problems = list(_NOTICE_PROBLEMS)
    _NOTICE_PROBLEMS.clear()
    assert not problems, f"notifications asked for that notify cannot send: {problems}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _NOTICES_SEEN:
        terminalreporter.write_line(f"notification contract: {len(_NOTICES_SEEN)} templates asked for by services "
                                    f"in this run matched notify's catalogue; not asked for through a service "
                                    f"transaction: {sorted(_TEMPLATES - _NOTICES_SEEN)}")
