"""Every client ``make_client`` builds counts its commands in ``kagi_db_commands_total`` by command and collection."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from kagi_shared import metrics
from kagi_shared.mongo import Store


def sent(command: str, collection: str) -> float:
    value = REGISTRY.get_sample_value("kagi_db_commands_total",
                                      {"service": metrics.process, "command": command, "collection": collection})
    return value or 0.0


async def test_each_command_is_counted_once_by_command_and_collection(store_factory: Any) -> None:
    store: Store = await store_factory("commands")
    before = {key: sent(*key) for key in [("insert", "things"), ("find", "things"), ("find", "others"),
                                          ("ping", "")]}

    await store.db["things"].insert_one({"_id": "a"})
    await store.db["things"].find_one({"_id": "a"})
    await store.db["things"].find_one({"_id": "b"})
    await store.ping()

    assert {key: sent(*key) - n for key, n in before.items()} == {
        ("insert", "things"): 1, ("find", "things"): 2, ("find", "others"): 0, ("ping", ""): 1}


async def test_the_series_follow_the_name_the_process_is_given(store_factory: Any) -> None:
    store: Store = await store_factory("commands")
    named = metrics.process
    try:
        metrics.name_process("counter-test-api")  # after the client exists, as a worker's store is made
        await store.db["things"].find_one({"_id": "a"})
        assert sent("find", "things") == 1
    finally:
        metrics.name_process(named)
