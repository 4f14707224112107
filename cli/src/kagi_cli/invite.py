"""``kagi invite``: sample contract data for usage locations, published on ``contracts.upserted``.

In production the utility's billing systems publish these events; locally this command does, and the
invite worker stores them (the latest version of each supply-point number wins, so re-running is harmless).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from kagi_cli.commands import command_group
from kagi_shared.settings import Settings

if TYPE_CHECKING:
    from kagi_shared.events import invite as ev

DEMO_OWNER = "owner@kagi.example.jp"
_BUILDINGS = ("有明町ビル", "丸の内センター", "芝浦倉庫", "品川第二工場", "新宿オフィス", "横浜物流棟",
              "川崎研究所", "千葉配送センター", "大宮営業所", "立川データセンター", "八王子工場", "船橋店舗")


class CliError(Exception):
    pass


def sample_contracts(owner_account_id: str, count: int = 12, start: date | None = None) -> list[ev.ContractUpserted]:
    """Deterministic sample locations: valid 22-digit supply-point numbers, a year of bills, a week of readings."""
    from kagi_shared.events import invite as ev

    start = start or date(2026, 1, 1)
    # A supply point belongs to one contract holder: derive the numbers from the owner so owners never collide.
    area = int(hashlib.sha256(owner_account_id.encode()).hexdigest(), 16) % 10**8
    contracts = []
    for i in range(count):
        name = _BUILDINGS[i % len(_BUILDINGS)] + (f" {i // len(_BUILDINGS) + 1}号" if i >= len(_BUILDINGS) else "")
        contracts.append(ev.ContractUpserted(
            owner_account_id=owner_account_id,
            supply_point_number=f"03{area:08d}{i:06d}000000",
            customer_number=f"{1234567890100 + i}",
            name=name,
            address=f"東京都千代田区有明町{i + 1}-{i % 5 + 1}-{i % 3 + 1}",
            contract={"plan": "業務用電力", "contractPowerKw": str(50 + 10 * i), "voltage": "高圧 6kV",
                      "startedOn": "2020-04-01"},
            statements=[ev.Statement(month=f"2025-{m:02d}", amount_yen=180_000 + 1_000 * i + 500 * m,
                                     usage_kwh=9_000.0 + 100 * i + 50 * m) for m in range(1, 13)],
            energy=[ev.EnergyReading(day=start + timedelta(days=d), kwh=300.0 + 10 * i + d) for d in range(7)],
        ))
    return contracts


def sample_water_contracts(count: int = 3) -> list[ev.WaterContractUpserted]:
    """Water contracts anyone may claim in the demo with customer no. + billing no. + phone (see README)."""
    from kagi_shared.events import invite as ev

    return [ev.WaterContractUpserted(customer_number=f"W{1000000 + i}", billing_number=f"12A{4560 + i}",
                                     name=f"水道 太郎 {i + 1}", service_address=f"大阪府大阪市北区中之島{i + 1}-3-20",
                                     phone=f"0664581{i:03d}", debit_last4=f"{1234 + i}")
            for i in range(count)]


def _key(event: ev.ContractUpserted | ev.WaterContractUpserted) -> str:
    from kagi_shared.events import invite as ev

    return event.supply_point_number if isinstance(event, ev.ContractUpserted) else event.customer_number


async def publish_contracts(settings: Settings,
                            contracts: Sequence[ev.ContractUpserted | ev.WaterContractUpserted]) -> int:
    from kagi_shared.events import new_envelope
    from kagi_shared.kafka import ensure_topics, make_producer, publish
    from kagi_shared.topics import CONTRACTS_UPSERTED

    await ensure_topics(settings)
    producer = make_producer(settings, "kagi-cli")
    await producer.start()
    try:
        for contract in contracts:
            envelope = new_envelope(contract, source="kagi/cli", subject=_key(contract))
            await publish(producer, CONTRACTS_UPSERTED.name, envelope)
    finally:
        await producer.stop()
    return len(contracts)


async def account_id_of(settings: Settings, login_id: str) -> str:
    from kagi_lifecycle.bootstrap import bootstrap

    lifecycle = bootstrap(settings)
    try:
        account = await lifecycle.accounts.by_login_id(login_id.strip().lower())
    finally:
        await lifecycle.close()
    if account is None:
        raise CliError(f"no account {login_id!r} (run 'kagi demo seed' first)")
    return account.id


async def seed_contracts(settings: Settings, owner_login_id: str = DEMO_OWNER, count: int = 12) -> int:
    owner = await account_id_of(settings, owner_login_id)
    return await publish_contracts(settings, [*sample_contracts(owner, count), *sample_water_contracts()])


def cmd_seed_contracts(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from aiokafka.errors import KafkaError
    from pymongo.errors import PyMongoError

    from kagi_shared.topics import CONTRACTS_UPSERTED

    try:
        published = asyncio.run(seed_contracts(settings, args.owner, args.count))
    except CliError as exc:
        print(f"kagi: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        print(f"kagi: cannot publish to the broker at {settings.kafka_bootstrap} ({exc}); is it up? "
              "('kagi infra up')", file=sys.stderr)
        return 1
    except PyMongoError as exc:
        print(f"kagi: cannot read accounts from the database ({type(exc).__name__}); is it up? ('kagi infra up')",
              file=sys.stderr)
        return 1
    print(f"published {published} sample contracts (usage locations of {args.owner} and water contracts) "
          f"on {CONTRACTS_UPSERTED.name}")
    return 0


def register(sub: Any) -> None:
    invite_sub = command_group(sub, "invite", "invitations and usage locations",
                               "The invite service's sample data")
    seed = invite_sub.add_parser("seed-contracts", help="publish sample contracts and usage locations (idempotent)",
                                 description="Publish sample contracts on contracts.upserted for an account; "
                                             "re-running is harmless")
    seed.add_argument("--owner", default=DEMO_OWNER, help=f"login ID of the owning account (default {DEMO_OWNER})")
    seed.add_argument("--count", type=int, default=12, help="number of locations (default 12)")
    seed.set_defaults(func=cmd_seed_contracts)
