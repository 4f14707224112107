"""What the permissions service tells lifecycle about each ID (``access_changed``), and seed 5-2 change timing,
against the embedded database and broker."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from permissions_helpers import ack, acks_consumer, commands_on, data_of, granted_user, relay_all, with_company

from kagi_permissions.domain.companies import Admin
from kagi_permissions.service.requests import RequestInput
from kagi_shared.events import decode
from kagi_shared.events import permissions as ev
from kagi_shared.jst import JST
from kagi_shared.kafka import read_topic
from kagi_shared.mongo import OUTBOX
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings


async def access_changes(store: Any, user_id: str) -> list[dict[str, Any]]:
    rows = await store.db[OUTBOX].find({"topic": "permissions.events", "type": "kagi.permissions.access_changed"}) \
        .sort("seq").to_list()
    return [{**data_of(r), "key": r["key"]} for r in rows if data_of(r)["userId"].lower() == user_id.lower()]


async def pms_commands(settings: Settings, user_id: str) -> list[ev.GrantCommanded]:
    """The permission-management right's commands for one ID (company routes have no request the test knows)."""
    out = []
    for record in await read_topic(settings, "permissions.grants.pms"):
        _, event = decode(record.value)
        if isinstance(event, ev.GrantCommanded) and event.user_id == user_id.lower():
            out.append(event)
    return out


def jst_noon(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=JST).astimezone(UTC)


@pytest.mark.parametrize(("submitted", "batch"), [
    ("2026-06-15", "2026-06-16"), ("2026-06-16", "2026-07-01"), ("2026-12-31", "2027-01-04")])
async def test_a_juju_change_is_accepted_by_the_system_for_the_batch_of_its_submission_date(
        settings: Settings, store_factory: Any, submitted: str, batch: str) -> None:
    store, permissions, _, admin = await with_company(settings, store_factory)
    user = await granted_user(settings, store, permissions, admin, TAXIS="1010")
    rq = permissions.requests
    change = await rq.submit(admin, RequestInput(kind="change", user_id=user,
                                                 permissions={"TAXIS": "1011", "JUJU": "yes"}), now=jst_noon(submitted))
    assert (change.status, change.accepted_on, change.batch_date) == ("accepted", date.fromisoformat(submitted),
                                                                       date.fromisoformat(batch))
    assert change.system("TAXIS").state == "sent"  # type: ignore[union-attr]  # routed at once
    assert change.system("JUJU").state == "waiting"  # type: ignore[union-attr]
    with pytest.raises(Problem) as refused:  # no operator acceptance step for a change (seed 5-2)
        await rq.accept(change.id)
    assert refused.value.code == "request.not_submitted"
    # The batch of the day before M leaves it; the batch of M sends the JUJU command.
    before = date.fromordinal(date.fromisoformat(batch).toordinal() - 1)
    assert (await rq.run_batch(before)).commands == 0
    assert (await rq.run_batch(date.fromisoformat(batch))).commands == 1
    await relay_all(settings, store)
    [(_, juju)] = await commands_on(settings, "JUJU", {change.id})
    assert (juju.action, juju.after) == ("grant", "yes")


async def test_applied_systems_and_termination_tell_lifecycle_what_the_id_holds(settings: Settings,
                                                                               store_factory: Any) -> None:
    store, permissions, company_id, admin = await with_company(settings, store_factory)
    user = await granted_user(settings, store, permissions, admin, TAXIS="1010")
    changes = await access_changes(store, user)
    assert [(c["system"], c["before"], c["after"], c["reason"]) for c in changes] == [
        ("TAXIS", None, "1010", "request"), ("INFOSITE", None, "yes", "request")]
    assert changes[-1]["permissions"] == {"TAXIS": "1010", "INFOSITE": "yes"}
    assert {c["key"] for c in changes} == {user.lower()}  # one user's changes on one partition, in order

    # The admin's PMS right, acked: lifecycle enrols the admin from this.
    await relay_all(settings, store)
    [pms] = await pms_commands(settings, admin.login_id)
    consumer = acks_consumer(permissions, settings)
    await consumer.process("permissions.acks", *await ack(settings, pms))
    [granted] = await access_changes(store, admin.login_id)
    assert (granted["system"], granted["after"], granted["permissions"]) == ("PMS", "yes", {"PMS": "yes"})

    # An admin change: the new admin's PMS is routed (enrolled on its ack), the old admin's revoked.
    new_admin = f"new-{admin.login_id}"
    await permissions.companies.change(company_id, {"primary_admin": Admin(name="新任 太郎", email=new_admin)})
    await relay_all(settings, store)
    [revoke] = [c for c in await pms_commands(settings, admin.login_id) if c.action == "revoke"]
    [grant] = await pms_commands(settings, new_admin)
    await consumer.process("permissions.acks", *await ack(settings, revoke))
    await consumer.process("permissions.acks", *await ack(settings, grant))
    old = await access_changes(store, admin.login_id)
    assert (old[-1]["before"], old[-1]["after"], old[-1]["permissions"]) == ("yes", None, {})  # → disabled
    assert (await access_changes(store, new_admin))[-1]["permissions"] == {"PMS": "yes"}

    # Termination: every holder is told at once that it holds nothing, before the target systems answer.
    await permissions.companies.terminate(company_id)
    last = (await access_changes(store, user))[-1]
    assert (last["reason"], last["permissions"]) == ("company_terminated", {})
    assert (await access_changes(store, new_admin))[-1]["reason"] == "company_terminated"
