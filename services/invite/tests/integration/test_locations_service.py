"""Usage locations and viewer keys against the real database; contract data through the real broker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from invite_helpers import NoDeadLetters, open_step_up, refusal, started

from kagi_cli.invite import publish_contracts, sample_contracts
from kagi_invite.bootstrap import Invite, bootstrap, contracts, purges
from kagi_shared.events import invite as ev
from kagi_shared.events import lifecycle as lev
from kagi_shared.events import new_envelope
from kagi_shared.events.envelope import encode
from kagi_shared.kafka import read_topic
from kagi_shared.mongo import OUTBOX
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from kagi_shared.topics import CONTRACTS_UPSERTED

OWNER = Caller(account_id="biz-owner", login_id="biz@example.jp", email="biz@example.jp", roles=("owner",),
               session_id="s-1")
OTHER = Caller(account_id="biz-other", login_id="other@example.jp", email="other@example.jp", roles=("owner",),
               session_id="s-1")
VIEWER = Caller(account_id="viewer-1", login_id="viewer@example.jp", email="viewer@example.jp", roles=("viewer",),
                session_id="s-1")


async def step_up(invite: Invite, caller: Caller = OWNER) -> None:
    await open_step_up(invite, caller)


async def seeded(invite: Invite, owner: str = OWNER.account_id, count: int = 12) -> list[ev.ContractUpserted]:
    events = sample_contracts(owner, count)
    for event in events:
        await invite.store.transaction(lambda tx, e=event: invite.locations.ingest(tx, e))  # type: ignore[misc]
    return events


async def test_contracts_published_on_the_topic_are_stored_once_each(settings: Settings,
                                                                    store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    await publish_contracts(settings, sample_contracts(owner, 3))
    records = [r for r in await read_topic(settings, CONTRACTS_UPSERTED.name)
               if owner.encode() in r.value]
    assert len(records) == 3
    consumer = contracts(invite, NoDeadLetters(), settings)
    outcomes = [await consumer.process(r.topic, r.key, r.value) for r in records + records]  # redelivered
    assert outcomes == ["handled"] * 3 + ["duplicate"] * 3
    found, total = await invite.locations.search(msgspec.structs.replace(OWNER, account_id=owner), "", 1, 10)
    assert total == 3 and len(found[0].statements) == 12 and found[0].energy[0]["day"] == "2026-01-01"


async def test_an_older_contract_version_is_ignored(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    [event] = await seeded(invite, count=1)
    newer = msgspec.structs.replace(event, name="新しい名前", version=3)
    older = msgspec.structs.replace(event, name="古い名前", version=2)
    for e in (newer, older):
        await invite.store.transaction(lambda tx, e=e: invite.locations.ingest(tx, e))  # type: ignore[misc]
    location = await invite.locations.view(OWNER, event.supply_point_number)
    assert (location.name, location.version) == ("新しい名前", 3)


async def test_search_by_name_number_or_customer_number_with_pages(settings: Settings,
                                                                  store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    events = await seeded(invite, count=12)
    await seeded(invite, owner=OTHER.account_id, count=0)
    page1, total = await invite.locations.search(OWNER, "", 1, 5)
    page3, _ = await invite.locations.search(OWNER, "", 3, 5)
    assert total == 12 and len(page1) == 5 and len(page3) == 2
    assert not {x.id for x in page1} & {x.id for x in page3}
    by_name, n = await invite.locations.search(OWNER, "芝浦", 1, 10)
    assert n == 1 and by_name[0].name == "芝浦倉庫"
    spn = events[4].supply_point_number
    grouped = f"{spn[:4]}-{spn[4:8]}-{spn[8:10]}-{spn[10:16]} {spn[16:]}"
    assert [x.id for x in (await invite.locations.search(OWNER, grouped, 1, 10))[0]] == [spn]
    assert [x.id for x in (await invite.locations.search(OWNER, events[7].customer_number, 1, 10))[0]] == \
        [events[7].supply_point_number]
    assert (await invite.locations.search(OWNER, ".*", 1, 10))[1] == 0  # the query is text, not a pattern
    assert (await invite.locations.search(OTHER, "", 1, 10))[1] == 0


async def test_viewer_key_gives_read_access_until_the_owner_deletes_it(settings: Settings,
                                                                      store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    events = await seeded(invite, count=2)
    spn = events[0].supply_point_number
    assert (await refusal(invite.locations.issue_viewer_key(OWNER, spn))).code == "step_up.required"
    await step_up(invite)
    plain, key, _ = await invite.locations.issue_viewer_key(OWNER, spn)
    assert key.expires_at - key.issued_at == timedelta(hours=24)
    assert plain not in str(await invite.store.db["viewer_keys"].find_one({"_id": key.id}))

    assert (await refusal(invite.locations.view(VIEWER, spn))).code == "location.not_found"
    assert (await refusal(invite.locations.add_viewing(OWNER, plain))).code == "viewer_key.own_location"
    typed = f"{plain[:4].lower()} {plain[4:]}"
    added = await invite.locations.add_viewing(VIEWER, typed)
    assert added.id == spn
    assert [x.id for x in await invite.locations.viewing(VIEWER)] == [spn]
    assert (await invite.locations.view(VIEWER, spn)).contract["plan"] == "業務用電力"
    other_spn = events[1].supply_point_number
    assert (await refusal(invite.locations.view(VIEWER, other_spn))).code == "location.not_found"
    assert (await refusal(invite.locations.add_viewing(VIEWER, plain))).code == "viewer_key.used"
    assert [v.login_id for v in await invite.locations.viewers(OWNER, spn)] == ["viewer@example.jp"]
    assert (await refusal(invite.locations.viewers(OTHER, spn))).code == "location.not_found"
    assert (await refusal(invite.locations.remove_viewer(OTHER, spn, VIEWER.account_id))).code == \
        "location.not_found"

    await invite.locations.remove_viewer(OWNER, spn, VIEWER.account_id)
    assert (await refusal(invite.locations.view(VIEWER, spn))).code == "location.not_found"
    assert await invite.locations.viewing(VIEWER) == []
    rows = await invite.store.db[OUTBOX].find({"topic": "notify.requests"}).to_list()
    mails = [msgspec.json.decode(bytes(r["value"]))["data"] for r in rows]
    assert sorted((m["template"], m["recipient"]) for m in mails) == [
        ("viewer_added", "biz@example.jp"), ("viewer_removed", "biz@example.jp"),
        ("viewer_removed", "viewer@example.jp")]
    public = " ".join(bytes(r["value"]).decode() for r in await invite.store.db[OUTBOX].find(
        {"topic": "invite.events"}).to_list())
    assert plain not in public


async def test_wrong_expired_and_malformed_viewer_keys(settings: Settings, store_factory: Any) -> None:
    invite = bootstrap(msgspec.structs.replace(settings, invite=msgspec.structs.replace(
        settings.invite, viewer_key_ttl_s=1)), await store_factory("invite"))
    await invite.start()
    [event] = await seeded(invite, count=1)
    await step_up(invite)
    plain, _, _ = await invite.locations.issue_viewer_key(OWNER, event.supply_point_number)
    wrong = "ZZZZ-ZZZZ-ZZZZ" if plain != "ZZZZZZZZZZZZ" else "YYYY-YYYY-YYYY"
    assert (await refusal(invite.locations.add_viewing(VIEWER, wrong))).code == "viewer_key.wrong"
    malformed = await refusal(invite.locations.add_viewing(VIEWER, "123sdfsdfe123"))
    assert malformed.code == "request.invalid" and malformed.errors[0].field == "key"
    await asyncio.sleep(1.1)
    assert (await refusal(invite.locations.add_viewing(VIEWER, plain))).code == "viewer_key.expired"
    missing = await refusal(invite.locations.issue_viewer_key(OWNER, "0" * 22))
    assert missing.code == "location.not_found"


async def test_a_purged_account_loses_its_links_and_rights(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    [event] = await seeded(invite, count=1)
    await step_up(invite)
    plain, _, _ = await invite.locations.issue_viewer_key(OWNER, event.supply_point_number)
    await invite.locations.add_viewing(VIEWER, plain)

    purged = new_envelope(lev.AccountPurged(account_id=VIEWER.account_id, login_id=VIEWER.login_id,
                                            email=VIEWER.email, at=datetime.now(UTC)),
                          source="kagi/lifecycle", subject=VIEWER.account_id)
    consumer = purges(invite, NoDeadLetters(), settings)
    assert await consumer.process("lifecycle.events", None, encode(purged)) == "handled"
    assert await invite.locations.viewing(VIEWER) == []
    assert await invite.locations.viewers(OWNER, event.supply_point_number) == []


async def test_a_new_owner_ends_the_previous_owners_viewers_and_keys(settings: Settings,
                                                                     store_factory: Any) -> None:
    """Issue 15, finding 5: the tenant moves out; a key it issued before, redeemed after, must not read the new
    occupant's statements, and its viewers lose their right (told by event and mail)."""
    invite = await started(settings, store_factory)
    outgoing = f"tenant-{uuid.uuid4().hex[:8]}"
    tenant = msgspec.structs.replace(OWNER, account_id=outgoing)
    [event] = sample_contracts(outgoing, 1)
    await publish_contracts(settings, [event])
    consumer = contracts(invite, NoDeadLetters(), settings)

    async def arrive(sent: ev.ContractUpserted) -> None:
        records = [r for r in await read_topic(settings, CONTRACTS_UPSERTED.name)
                   if sent.owner_account_id.encode() in r.value and sent.supply_point_number.encode() in r.value]
        assert records
        for record in records:
            await consumer.process(record.topic, record.key, record.value)

    await arrive(event)
    spn = event.supply_point_number
    await step_up(invite, tenant)
    first, _, _ = await invite.locations.issue_viewer_key(tenant, spn)
    unused, _, _ = await invite.locations.issue_viewer_key(tenant, spn)
    await invite.locations.add_viewing(VIEWER, first)
    assert (await invite.locations.view(VIEWER, spn)).id == spn

    incoming = f"newcomer-{uuid.uuid4().hex[:8]}"
    moved = msgspec.structs.replace(event, owner_account_id=incoming, version=event.version + 1)
    await publish_contracts(settings, [moved])
    await arrive(moved)

    assert (await refusal(invite.locations.view(VIEWER, spn))).code == "location.not_found"
    assert await invite.locations.viewing(VIEWER) == []
    late = msgspec.structs.replace(VIEWER, account_id="viewer-late", login_id="late@example.jp")
    assert (await refusal(invite.locations.add_viewing(late, unused))).code == "viewer_key.revoked"
    assert (await refusal(invite.locations.view(late, spn))).code == "location.not_found"
    newcomer = msgspec.structs.replace(OWNER, account_id=incoming)
    assert await invite.locations.viewers(newcomer, spn) == []
    rows = await invite.store.db[OUTBOX].find({"topic": "invite.events"}).to_list()
    removed = [msgspec.json.decode(bytes(r["value"]))["data"] for r in rows
               if b"viewer_removed" in bytes(r["value"]) and spn.encode() in bytes(r["value"])]
    assert [(e["accountId"], e["reason"]) for e in removed] == [(VIEWER.account_id, "owner_changed")]
    mails = [msgspec.json.decode(bytes(r["value"]))["data"]
             for r in await invite.store.db[OUTBOX].find({"topic": "notify.requests"}).to_list()]
    assert ("viewer_removed", VIEWER.email) in {(m["template"], m["recipient"]) for m in mails}
    # The same owner sending a newer version changes nothing of what it shared.
    await step_up(invite, newcomer)
    again, _, _ = await invite.locations.issue_viewer_key(newcomer, spn)
    await invite.locations.add_viewing(VIEWER, again)
    update = msgspec.structs.replace(moved, name="改名", version=moved.version + 1)
    await publish_contracts(settings, [update])
    await arrive(update)
    assert (await invite.locations.view(VIEWER, spn)).name == "改名"
