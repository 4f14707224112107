"""What must hold after every drill, checked against the system's own records.

- every committed state change the workload made (the services' databases are the truth) has exactly
  one event on its topic, and no event exists for a change that was not committed;
- every event that asks for a mail produced exactly one mail (matched by the delivery id the mail carries);
- nothing is left in a non-final state: permission requests complete, deliveries sent, outboxes drained;
- no 5xx other than the documented 503/504, every refusal problem+json, no call the workload could not place;
- every consumer group's lag returns to zero and nothing new went to a dead-letter topic;
- the audit chain verifies and holds each operator/admin action of the workload exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from kagi_cli.mailbox import mailbox
from kagi_local.infra import SERVICES
from kagi_shared.events import Envelope, Event, decode
from kagi_shared.events import invite as iev
from kagi_shared.events import lifecycle as lev
from kagi_shared.events import notify as nev
from kagi_shared.events import permissions as pev
from kagi_shared.events.envelope import UnknownEventError
from kagi_shared.kafka import log_ends, make_consumer, partitions_of, read_topic, security, topic_sizes
from kagi_shared.metrics import METRICS_OFFSET
from kagi_shared.mongo import OUTBOX, database_name, make_client
from kagi_shared.settings import Settings
from kagi_shared.topics import (
    CATALOGUE,
    GRANT_TOPICS,
    INVITE_EVENTS,
    LIFECYCLE_EVENTS,
    NOTIFY_REQUESTS,
    PERMISSIONS_EVENTS,
    all_topic_names,
)
from tests.drills.workload import IDP, Workload, phase

SETTLE_S = 180


@dataclass(frozen=True)
class Seen:
    topic: str
    envelope: Envelope
    event: Event


async def eventually(what: str, probe: Callable[[], Awaitable[list[str]]], timeout_s: float = SETTLE_S) -> None:
    """Poll ``probe`` (it returns what is still wrong) until it returns nothing; fail with the last answer."""
    problems: list[str] = []
    for _ in range(int(timeout_s)):
        problems = await probe()
        if not problems:
            return
        await asyncio.sleep(1)
    raise AssertionError(f"{what} after {timeout_s}s: {problems[:20]}")


# -- Kafka -------------------------------------------------------------------------------------------
async def _consumer(settings: Settings) -> AIOKafkaConsumer:
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    return consumer


async def dlt_sizes(settings: Settings) -> dict[str, int]:
    return await topic_sizes(settings, [t for t in all_topic_names() if t.endswith(".dlt")])


def consumer_groups() -> dict[str, list[str]]:
    """faust's group id is the app id (``kagi-<service>``, see kagi_shared.faust_app); the catalogue says
    which topics each service consumes."""
    groups: dict[str, list[str]] = defaultdict(list)
    for topic in CATALOGUE:
        for service in topic.consumers:
            if service in SERVICES:
                groups[f"kagi-{service}"].append(topic.name)
    return dict(groups)


async def lags(settings: Settings) -> dict[str, int]:
    """Messages not yet committed per group and partition (only the non-zero ones)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="drill-lag",
                                **security(settings))
    consumer = await _consumer(settings)
    await admin.start()
    try:
        behind: dict[str, int] = {}
        for group, topics in consumer_groups().items():
            partitions = [TopicPartition(t, p) for t in topics for p in sorted(await partitions_of(consumer, t))]
            ends = await log_ends(consumer, partitions)
            # An explicit partition list: Tansu cannot answer the "all partitions" form of OffsetFetch.
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            for tp in partitions:
                done = committed[tp].offset if tp in committed else -1
                lag = ends[tp] - max(done, 0)
                if lag:
                    behind[f"{group} {tp.topic}:{tp.partition}"] = lag
        return behind
    finally:
        await consumer.stop()
        await admin.close()


async def consumer_view(settings: Settings, lag_key: str) -> dict[str, float] | str:
    """The worker's own ``kagi_consumer_offset`` samples for the partition of a ``lags`` key."""
    group, where = lag_key.split(" ")
    topic, partition = where.rsplit(":", 1)
    port = settings.ports.worker_metrics_base + METRICS_OFFSET[group.removeprefix("kagi-")]
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError as exc:
        return f"unreachable: {exc!r}"
    return {s.labels["kind"]: s.value for family in text_string_to_metric_families(text)
            if family.name == "kagi_consumer_offset" for s in family.samples
            if s.labels["topic"] == topic and s.labels["partition"] == partition}


async def read_events(settings: Settings, topics: list[str]) -> dict[str, list[Seen]]:
    seen: dict[str, list[Seen]] = {}
    for topic in topics:
        seen[topic] = []
        for record in await read_topic(settings, topic, timeout_s=30):
            try:
                envelope, event = decode(record.value)
            except (UnknownEventError, msgspec.DecodeError, msgspec.ValidationError):
                continue  # poison other tests put on the shared topics on purpose; consumers dead-letter it
            seen[topic].append(Seen(topic, envelope, event))
    return seen


# -- the checks ----------------------------------------------------------------------------------------
async def check_invariants(w: Workload, *, republished: set[str] | None = None) -> None:
    """Wait (generously) for the system to settle, then check every invariant; ``republished`` are event ids
    the drill itself put on a topic a second time."""
    republished = republished or set()
    settings = w.settings
    assert not w.unexpected, w.unexpected
    server_errors = {k: n for k, n in w.statuses.items() if k[1] >= 500 and k[1] not in (503, 504)}
    assert not server_errors, (server_errors, w.last_failure)

    client = make_client(settings)
    try:
        db = {s: client[database_name(settings, s)] for s in ("lifecycle", "invite", "permissions", "notify")}

        async def open_requests() -> list[str]:
            docs = await db["permissions"]["requests"].find({"company_id": w.company_id}).to_list()
            return [f"{d['_id']} {d['status']} {[(s['system'], s['state']) for s in d['systems']]}"
                    for d in docs if d["status"] != "complete"]

        async def outboxes() -> list[str]:
            left = []
            for service in SERVICES:
                database = client[database_name(settings, service)]
                for name in (OUTBOX, "outbox_claims"):
                    if n := await database[name].count_documents({}):
                        left.append(f"{service}.{name}: {n}")
            return left

        async def lagging() -> list[str]:
            # With each lag, how many events the group's service has handled in all (its inbox) and the worker's own
            # view of the partition (kagi_consumer_offset): when a lag will not go, that tells a consumer that
            # stopped fetching (read behind the end) from a handler that hangs (in flight) from offset commits that
            # stopped (all read and handled, committed behind).
            behind = await lags(settings)
            handled = {group: await client[database_name(settings, group.removeprefix("kagi-"))]["inbox"]
                       .count_documents({}) for group in {k.split(" ")[0] for k in behind}}
            return [f"{k}: {v} (inbox {handled[k.split(' ')[0]]}; worker {await consumer_view(settings, k)})"
                    for k, v in behind.items()]

        await eventually("permission requests not complete", open_requests)
        phase("requests complete")
        await eventually("outbox rows not published", outboxes)
        await eventually("consumer lag not zero", lagging)
        phase("outboxes drained, lag zero")

        accounts = {d["login_id"]: d for d in await db["lifecycle"]["accounts"].find(
            {"login_id": {"$in": [u.login_id.lower() for u in w.accounts] + [i.lower() for i in w.invitees]}}
        ).to_list()}
        owner_ids = {accounts[u.login_id.lower()]["_id"] for u in [*w.owners, *w.inviters]}
        codes = await db["invite"]["step_up_codes"].find({"account_id": {"$in": list(owner_ids)}}).to_list()
        keys = await db["invite"]["invitation_keys"].find({"owner_id": {"$in": list(owner_ids)}}).to_list()
        links = await db["invite"]["confirmation_links"].find({"email": {"$in": w.invitees}}).to_list()
        requests = await db["permissions"]["requests"].find({"company_id": w.company_id}).to_list()

        topics = [INVITE_EVENTS.name, LIFECYCLE_EVENTS.name, PERMISSIONS_EVENTS.name, NOTIFY_REQUESTS.name,
                  *(t.name for t in GRANT_TOPICS)]
        seen = await read_events(settings, topics)
        phase(f"topics read: {sum(len(v) for v in seen.values())} events")
        problems: list[str] = []

        # invite: codes, verifications, keys, redemptions, links
        invite = [s for s in seen[INVITE_EVENTS.name] if s.envelope.subject in owner_ids
                  or s.envelope.subject in {link["_id"] for link in links}]

        for kind, attr, expected in (
                (iev.StepUpCodeIssued, "code_id", {c["_id"] for c in codes}),
                (iev.StepUpVerified, "code_id", {c["_id"] for c in codes if c["status"] == "used"}),
                (iev.KeyIssued, "key_id", {k["_id"] for k in keys}),
                (iev.KeyRedeemed, "key_id", {k["_id"] for k in keys if k["status"] == "redeemed"}),
                (iev.InvitationRequested, "link_id", {link["_id"] for link in links})):
            of_kind = [s for s in invite if isinstance(s.event, kind)]
            problems += _duplicates(kind.__name__, of_kind, republished)
            per_aggregate = Counter(getattr(s.event, attr) for s in _distinct(of_kind))
            problems += [f"{kind.__name__}: {a} has {n} distinct events" for a, n in per_aggregate.items() if n > 1]
            problems += [f"{kind.__name__}: no event for {a}" for a in expected - set(per_aggregate)]
            problems += [f"{kind.__name__}: event for {a}, nothing committed" for a in set(per_aggregate) - expected]

        # lifecycle: one AccountCreated per account; logins as counted by the workload
        by_account = {d["_id"]: d for d in accounts.values()}
        lifecycle = [s for s in seen[LIFECYCLE_EVENTS.name] if s.envelope.subject in by_account]
        problems += _duplicates("lifecycle.events", lifecycle, republished)
        created = Counter(s.envelope.subject for s in _distinct(lifecycle) if isinstance(s.event, lev.AccountCreated))
        problems += [f"AccountCreated for {by_account[a]['login_id']}: {created[a]}" for a in by_account
                     if created[a] != 1]
        for user in w.accounts:
            account = accounts[user.login_id.lower()]
            logged = [s.event for s in _distinct(lifecycle)
                      if s.envelope.subject == account["_id"] and isinstance(s.event, lev.LoggedIn)]
            kagi = sum(1 for e in logged if e.via == "kagi")
            external = sum(1 for e in logged if e.via == IDP)
            low, high = w.logins[user.login_id], w.logins[user.login_id] + w.ambiguous_logins[user.login_id]
            if not low <= kagi <= high:
                problems.append(f"{user.login_id}: {kagi} LoggedIn events for {low}..{high} logins")
            if external != w.external_logins[user.login_id]:
                problems.append(f"{user.login_id}: {external} external LoggedIn for "
                                f"{w.external_logins[user.login_id]} reports")
            latest = max((e.at for e in logged), default=None)
            stored = account.get("last_login_at")
            # The database keeps milliseconds; the event the full time.
            if latest and (stored is None or abs((stored - latest).total_seconds()) >= 0.001):
                problems.append(f"{user.login_id}: last login {stored} is not the latest event's {latest}")

        # permissions: the request's history and one grant command per current command id
        request_ids = {r["_id"] for r in requests}
        missing = set(w.request_ids) - request_ids
        problems += [f"request {r} filed but not stored" for r in missing]
        events = [s for s in seen[PERMISSIONS_EVENTS.name] if s.envelope.subject in request_ids]
        problems += _duplicates("permissions.events", events, republished)
        grants = [s for t in GRANT_TOPICS for s in seen[t.name]
                  if isinstance(s.event, pev.GrantCommanded) and s.event.company_id == w.company_id]
        problems += _duplicates("permissions.grants", grants, republished)
        for request in requests:
            history = Counter(type(s.event).__name__ for s in _distinct(events) if s.envelope.subject == request["_id"])
            applied = sum(1 for s in request["systems"] if s["state"] == "applied")
            if request.get("origin", "admin") == "admin":
                want = Counter({"RequestSubmitted": 1, "RequestAccepted": 1 if request.get("accepted_on") else 0,
                                "SystemCompleted": applied,
                                "RequestCompleted": 1 if request["status"] == "complete" else 0})
                if +want != +history:
                    problems.append(f"request {request['_id']}: events {dict(history)} for state {dict(+want)}")
            for system in request["systems"]:
                commands = [s.event for s in _distinct(grants) if s.event.request_id == request["_id"]
                            and s.event.system == system["system"]]
                if len(commands) != system.get("attempts", 0) or \
                        (system.get("command_id") and system["command_id"] not in {c.command_id for c in commands}):
                    problems.append(f"request {request['_id']} {system['system']}: {len(commands)} commands "
                                    f"for {system.get('attempts')} attempts")

        # mails asked for: what the services committed asks for exactly these
        staff = [u.login_id for u in (w.admin, w.operator) if u is not None]
        recipients = {a.lower() for a in [*(u.login_id for u in w.accounts), *w.invitees, *w.user_ids, *staff]}
        asked = [s for s in seen[NOTIFY_REQUESTS.name] if isinstance(s.event, nev.NotificationRequested)
                 and s.event.recipient.lower() in recipients and s.event.channel == "mail"]
        problems += _duplicates("notify.requests", asked, republished)
        asked_for = Counter((s.event.recipient.lower(), s.event.template) for s in _distinct(asked))
        emails = {d["_id"]: d.get("email", d["login_id"]).lower() for d in accounts.values()}
        want_mail: Counter[tuple[str, str]] = Counter()
        for code in codes:
            want_mail[(emails[code["account_id"]], "step_up_code")] += 1
        for link in links:
            want_mail[(link["email"].lower(), "invitation_confirm")] += 1
        for key in keys:
            if key["status"] == "redeemed":
                want_mail[(key.get("owner_email", "").lower(), "co_user_added")] += 1
                want_mail[(emails.get(key["redeemed_by"], key.get("redeemed_login_id", "")).lower(),
                           "co_user_added")] += 1
        # 認証情報登録: lifecycle mails one guide and one one-time password per enrolment it stored (an applied
        # grant enrols the user once), and every user whose new request completed has one.
        new_users = {r["user_key"]: r for r in requests if r["kind"] == "new"}
        enrolments = await db["lifecycle"]["enrolments"].find({"login_id": {"$in": sorted(new_users)}}).to_list()
        enrolled = {e["login_id"] for e in enrolments}
        # (The company's admin held an account before the company was registered: nothing to enrol.)
        filed_for = {u.lower() for u in w.user_ids}
        problems += [f"{key}: new request complete but no enrolment" for key, r in new_users.items()
                     if r["status"] == "complete" and key not in enrolled and r["user_id"].lower() in filed_for]
        for enrolment in enrolments:
            email = new_users[enrolment["login_id"]]["user_id"].lower()
            want_mail[(email, "user_registration_guide")] += 1
            want_mail[(email, "user_one_time_password")] += 1
        checked = {t for _, t in want_mail}
        got_mail = Counter({k: n for k, n in asked_for.items() if k[1] in checked})
        if got_mail != want_mail:
            problems.append(f"mail requests {dict(got_mail - want_mail)} beyond and {dict(want_mail - got_mail)} "
                            f"missing from what was committed")
        assert not problems, "\n".join(problems[:40])

        # every mail asked for was sent exactly once
        wanted = {s.envelope.id for s in asked}

        def sent() -> Counter[str]:
            return Counter(str(m.message["X-Kagi-Delivery-Id"]) for m in mailbox(settings.var_path / "mail")
                           if m.to.lower() in recipients)

        async def unsent() -> list[str]:
            got = sent()
            dupes = [f"mail {d} sent {n} times" for d, n in got.items() if n > 1]
            assert not dupes, dupes
            return [f"no mail for {d}" for d in wanted - set(got)]

        await eventually("mails not sent", unsent)
        phase(f"{len(wanted)} mails sent")
        await asyncio.sleep(1.5)  # a late duplicate would show now
        got = sent()
        assert {d for d, n in got.items() if n > 1} == set(), got
        assert set(got) == wanted, f"mails without a request: {set(got) - wanted}"
        deliveries = await db["notify"]["deliveries"].find({"_id": {"$in": list(wanted)}}).to_list()
        states = Counter(d["status"] for d in deliveries)
        assert len(deliveries) == len(wanted) and set(states) <= {"sent"}, states

        # nothing half-done in invite: no key or link held by a reservation that ran out
        now = datetime.now(UTC)
        held = [k["_id"] for k in keys if k["status"] == "reserved" and k["reserved_until"] <= now]
        held += [lk["_id"] for lk in links if lk.get("status") == "reserved" and lk["reserved_until"] <= now]
        assert not held, f"stuck reservations: {held}"
        redeemed = sum(1 for k in keys if k["status"] == "redeemed")
        assert redeemed == len(w.invitees), f"{redeemed} keys redeemed for {len(w.invitees)} invitations"
    finally:
        await client.close()

    new_dead = {t: n - w.dlt_before.get(t, 0) for t, n in (await dlt_sizes(settings)).items()
                if n != w.dlt_before.get(t, 0)}
    assert not new_dead, f"dead-lettered during the drill: {new_dead}"
    await check_audit(w)
    phase("invariants hold")


async def check_audit(w: Workload) -> None:
    from kagi_audit.bootstrap import bootstrap

    audit = bootstrap(w.settings)
    try:
        async def unrecorded() -> list[str]:
            counts = Counter([link.entry.get("requestId") async for link in audit.ledger.all()])
            twice = [f"{r} recorded {counts[r]} times" for r in w.audited if counts[r] > 1]
            assert not twice, twice
            return [f"{r} not in the ledger" for r in w.audited if counts[r] == 0]

        await eventually("operator actions not audited", unrecorded, 120)
        verdict = await audit.service.verify()
        assert verdict.ok, f"audit chain broken at {verdict.broken_at}: {verdict.reason}"
    finally:
        await audit.close()


def _duplicates(what: str, seen: list[Seen], republished: set[str]) -> list[str]:
    counts = Counter(s.envelope.id for s in seen)
    return [f"{what}: event {e} ({type(s.event).__name__}) is {counts[e]} times on the topic"
            for e, s in {s.envelope.id: s for s in seen}.items() if counts[e] > 1 and e not in republished]


def _distinct(seen: list[Seen]) -> list[Seen]:
    return list({s.envelope.id: s for s in seen}.values())
