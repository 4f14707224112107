"""The drills' mixed workload, driven through the gateway as real users would.

Actors run concurrently and keep going until the fault is over, then one more round each, so every
fault lands in the middle of every kind of flow:
- owners ask for step-up codes and log in again and again (step-up mails, ``LoggedIn`` events);
- inviters step up (code by mail, verify), issue a key; a new invitee asks for a confirmation link
  (mail) and redeems the key with a new account (``co_user_added`` mails to both);
- a company admin files new-user permission requests; the operator accepts them and runs the batch;
  a stand-in for the target systems acknowledges every grant command of the drill's company
  (status mails, registration guide and one-time password mails);
- an external identity provider reports logins on ``auth.logins`` (the lifecycle worker's input).

Calls answered 503/504 (a dependency is down: documented) or not answered at all (the gateway itself
is down) are retried, as a client following ``Retry-After`` would; a retry that finds its first attempt
already committed is recognised by the answer it gets. Anything else unexpected is recorded and fails
the drill's invariants.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from kagi_cli.mailbox import Mail, read_mail
from kagi_shared.events import decode, encode, new_envelope
from kagi_shared.events import lifecycle as lev
from kagi_shared.events import permissions as pev
from kagi_shared.kafka import make_consumer, make_producer
from kagi_shared.settings import Settings
from kagi_shared.topics import AUTH_LOGINS, GRANT_TOPICS, PERMISSIONS_ACKS
from tests.e2e.conftest import User, code_in, create_user

FULL = os.environ.get("KAGI_DRILL_SCALE") == "full"
TRANSIENT = {503, 504}
PASSWORD = "Drill-pass-2026"  # noqa: S105 - a test account
STEP_UP_SUBJECT = "認証コード発行のお知らせ"
CONFIRM_SUBJECT = "メールアドレス確認"
IDP = "drill-idp"
PACE_S = 1.0
"""Each actor's pause between rounds: the load grows with the fault's length, not with the machine's speed."""


def problem_code(reply: httpx.Response) -> str | None:
    if reply.headers.get("content-type", "").startswith("application/problem+json"):
        return str(reply.json().get("code"))
    return None


def in_progress(reply: httpx.Response) -> bool:
    """The first attempt with this call's Idempotency-Key is still running: retry, as for a 503."""
    return reply.status_code == 409 and problem_code(reply) == "idempotency.in_progress"


def answer_lost(reply: httpx.Response) -> bool:
    """An attempt with this call's key went through, and its process ended before keeping the answer."""
    return reply.status_code == 409 and problem_code(reply) == "idempotency.answer_lost"


@dataclass(frozen=True)
class Scale:
    owners: int
    rounds: int
    inviters: int
    filers: int
    external: int


SCALE = Scale(owners=12, rounds=6, inviters=4, filers=3, external=3) if FULL else \
    Scale(owners=3, rounds=2, inviters=1, filers=1, external=1)


class Unexpected(AssertionError):
    pass


class MailNotYet(Unexpected):
    pass


_T0 = time.monotonic()


def phase(what: str) -> None:
    """A timestamped line in the captured output: where a slow or failed drill spent its time."""
    print(f"[drill {time.monotonic() - _T0:7.1f}s] {what}", flush=True)


@dataclass
class Workload:
    """One drill's actors and what they did; ``check_invariants`` compares it with the system's own records."""

    settings: Settings
    gateway: httpx.AsyncClient
    scale: Scale = SCALE
    owners: list[User] = field(default_factory=list)
    inviters: list[User] = field(default_factory=list)
    external: list[User] = field(default_factory=list)
    operator: User | None = None
    admin: User | None = None
    company_id: str = ""
    invitees: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    audited: list[str] = field(default_factory=list)
    """X-Request-IDs of operator/admin calls that succeeded: each must be in the audit ledger once."""
    logins: Counter[str] = field(default_factory=Counter)
    """Successful logins per login id (each one ``LoggedIn`` event)."""
    ambiguous_logins: Counter[str] = field(default_factory=Counter)
    external_logins: Counter[str] = field(default_factory=Counter)
    last_failure: str = ""
    dlt_before: dict[str, int] = field(default_factory=dict)
    targets: TargetSystems | None = None
    _mails: dict[str, Mail] = field(default_factory=dict)

    # -- setup -----------------------------------------------------------------------------------
    async def setup(self) -> None:
        s = self.scale
        self.owners = [await create_user(self.settings, self.gateway, ["owner"]) for _ in range(s.owners)]
        self.inviters = [await create_user(self.settings, self.gateway, ["owner"]) for _ in range(s.inviters)]
        self.external = [await create_user(self.settings, self.gateway, ["viewer"]) for _ in range(s.external)]
        for user in [*self.owners, *self.inviters, *self.external]:
            self.logins[user.login_id] += 1  # create_user logged in once
        self.operator = await create_user(self.settings, self.gateway, ["operator"])
        self.admin = await create_user(self.settings, self.gateway, ["company_admin"])
        company = await self.call("company", "POST", "/api/v1/operator/companies", self.operator, json={
            "name": f"ドリル電力株式会社 {uuid.uuid4().hex[:6]}", "roles": ["gas_retailer", "consignment_requester"],
            "primaryAdmin": {"name": "訓練 太郎", "email": self.admin.login_id}, "contractors": ["委託先A株式会社"]})
        self.company_id = company.json()["companyId"]
        self.targets = TargetSystems(self.settings, {self.company_id})
        await self.targets.start()
        phase("workload set up")

    async def close(self) -> None:
        if self.targets is not None:
            await self.targets.stop()

    @property
    def accounts(self) -> list[User]:
        return [*self.owners, *self.inviters, *self.external]

    # -- HTTP ------------------------------------------------------------------------------------
    async def call(self, label: str, method: str, path: str, user: User | None = None, *,
                   json: Any = None, ok: tuple[int, ...] = (200, 201, 202, 204),
                   settled: Callable[[httpx.Response], bool] = lambda r: False,
                   timeout_s: float = 240) -> httpx.Response:
        """One call, retried while the answer is 503/504 or nothing; ``settled`` accepts a refusal that
        means an earlier attempt already went through. Problem answers must be problem+json."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        audited = user is not None and (user is self.operator or user is self.admin) and method != "GET"
        # One key per logical call, the same on each retry: a retry after a 504 whose attempt committed gets that
        # attempt's answer (Idempotent-Replayed) instead of a second link, mail or rate-limit hit. Routes that
        # do not take the key ignore it.
        key = {"Idempotency-Key": f"drill-{uuid.uuid4().hex}"} if method == "POST" else {}
        while True:
            rid = f"drill-{uuid.uuid4().hex}"
            headers = {"X-Request-ID": rid, **key, **(user.auth if user else {})}
            try:
                reply = await self.send(method, path, json=json, headers=headers)
            except httpx.TransportError as exc:
                self.statuses[(label, 0)] += 1
                self.last_failure = f"{label}: {exc}"
            else:
                self.statuses[(label, reply.status_code)] += 1
                if reply.status_code >= 400 and \
                        not reply.headers.get("content-type", "").startswith("application/problem+json"):
                    self._unexpected(label, reply)
                if reply.status_code in ok:
                    if audited:
                        self.audited.append(rid)
                    return reply
                if reply.status_code in TRANSIENT or in_progress(reply):
                    self.last_failure = f"{label}: {reply.status_code} {reply.text[:300]}"
                elif settled(reply):
                    return reply
                elif answer_lost(reply):
                    # As a person told 「処理結果をご確認ください」 would, when the result is not the one they need:
                    # ask again, a new call with a new key (the lost attempt's effects stand and are counted).
                    self.last_failure = f"{label}: {reply.status_code} {reply.text[:300]}"
                    key = {"Idempotency-Key": f"drill-{uuid.uuid4().hex}"}
                else:
                    self._unexpected(label, reply)
            if loop.time() > deadline:
                raise Unexpected(f"{label}: no answer within {timeout_s}s; last {self.last_failure}")
            await asyncio.sleep(0.5)

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a transport error says which step of the exchange failed (httpcore's trace), how long
        after the request began, and whether the connection was new or reused from the pool."""
        steps: list[str] = []
        started = time.monotonic()

        async def trace(name: str, info: dict[str, Any]) -> None:
            steps.append(f"{name}@{time.monotonic() - started:.2f}s")

        try:
            return await self.gateway.request(method, path, extensions={"trace": trace}, **kwargs)
        except httpx.TransportError as exc:
            reused = not any(step.startswith("connection.connect_tcp") for step in steps)
            raise type(exc)(f"{exc!r} after {time.monotonic() - started:.2f}s on a "
                            f"{'reused' if reused else 'new'} connection; steps: {' '.join(steps[-4:])}",
                            request=exc.request) from exc

    def _unexpected(self, label: str, reply: httpx.Response) -> None:
        message = f"{label}: {reply.status_code} {reply.text[:300]}"
        self.unexpected.append(message)
        raise Unexpected(message)

    # -- mail --------------------------------------------------------------------------------------
    def mails_to(self, address: str, subject_part: str) -> list[Mail]:
        return [m for m in self._mailbox() if m.to.lower() == address.lower() and subject_part in m.subject]

    def _mailbox(self) -> list[Mail]:
        """The sink's mails in order, each file parsed once (the sink renames a mail into place whole, so a name
        seen is final). Parsing the whole directory on every look, by 20-odd actors twice a second, froze this
        process's event loop for 10–25 s late in a run: requests sat unsent or unread, and the drills measured
        their own harness."""
        for path in sorted((self.settings.var_path / "mail").glob("*.eml")):
            if path.name not in self._mails:
                self._mails[path.name] = read_mail(path)
        return [self._mails[name] for name in sorted(self._mails)]

    async def new_mail(self, address: str, subject_part: str, seen: int, timeout_s: float = 240) -> list[Mail]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s  # wall clock: reading the sink directory takes longer as it fills
        while loop.time() < deadline:
            mails = self.mails_to(address, subject_part)
            if len(mails) > seen:
                return mails
            await asyncio.sleep(0.5)
        raise MailNotYet(f"no new mail '{subject_part}' to {address} within {timeout_s}s")

    # -- flows -------------------------------------------------------------------------------------
    async def step_ups_and_logins(self, owner: User, fault_over: asyncio.Event) -> None:
        after = 0
        while after < self.scale.rounds:
            after += fault_over.is_set()
            await self.call("step-up", "POST", "/api/v1/me/step-up", owner)
            await self.login(owner)
            await asyncio.sleep(PACE_S)

    async def login(self, user: User) -> None:
        body = {"loginId": user.login_id, "password": user.password}
        while True:
            try:
                reply = await self.send("POST", "/api/v1/auth/login", json=body)
            except httpx.TransportError as exc:
                self.statuses[("login", 0)] += 1
                self.last_failure = f"login: {exc}"
                self.ambiguous_logins[user.login_id] += 1  # it may have committed before the connection died
                await asyncio.sleep(0.5)
                continue
            self.statuses[("login", reply.status_code)] += 1
            if reply.status_code == 200:
                self.logins[user.login_id] += 1
                user.token = reply.json()["accessToken"]
                return
            if reply.status_code not in TRANSIENT:
                self._unexpected("login", reply)
            self.ambiguous_logins[user.login_id] += 1
            await asyncio.sleep(0.5)

    async def step_up(self, owner: User) -> None:
        """Ask for a code, read it from the mail, verify it; a code that a retry replaced is just wrong."""
        seen = len(self.mails_to(owner.login_id, STEP_UP_SUBJECT))
        await self.call("step-up", "POST", "/api/v1/me/step-up", owner)
        resent = 0
        while True:
            try:
                mails = await self.new_mail(owner.login_id, STEP_UP_SUBJECT, seen, timeout_s=60)
            except MailNotYet:
                # As a person would: no code after a minute, ask again. Whether every committed code got its
                # one mail is the invariants' judgement, not the workload's.
                resent += 1
                if resent > 3:
                    raise
                await self.call("step-up", "POST", "/api/v1/me/step-up", owner)
                continue
            seen = len(mails)
            for mail in reversed(mails):
                reply = await self.call("step-up-verify", "POST", "/api/v1/me/step-up/verify", owner,
                                        json={"code": code_in(mail)},
                                        settled=lambda r: r.status_code in (400, 409, 410))
                if reply.status_code == 200:
                    return
                state = await self.call("step-up-state", "GET", "/api/v1/me/step-up", owner)
                if state.json().get("verified") or state.json().get("validUntil"):
                    return  # an earlier attempt went through and its answer was lost

    async def invitation(self, owner: User) -> None:
        # As a person would: step up again only when the last one is about to lapse. (A fresh code for every
        # key would also run into the gateway's per-account limit on code guesses.)
        state = (await self.call("step-up-state", "GET", "/api/v1/me/step-up", owner)).json()
        until = state.get("validUntil")
        if not until or datetime.fromisoformat(until) - datetime.now(UTC) < timedelta(minutes=2):
            await self.step_up(owner)
        key = (await self.call("key", "POST", "/api/v1/me/invitations", owner)).json()["key"]
        invitee = f"drill-{uuid.uuid4().hex[:10]}@example.jp"
        self.invitees.append(invitee)
        await self.call("invitation-request", "POST", "/api/v1/invitations/requests", json={"email": invitee})
        mail = (await self.new_mail(invitee, CONFIRM_SUBJECT, 0))[-1]
        match = re.search(r"/invitations/accept\?token=([0-9a-f]+)", mail.body)
        assert match, mail.body
        body = {"token": match.group(1), "key": key, "account": "new", "password": PASSWORD}
        while True:
            reply = await self.call("redeem", "POST", "/api/v1/invitations/redeem", json=body,
                                    settled=lambda r: r.status_code == 409)
            code = reply.json().get("code")
            if reply.status_code == 201 or code in ("invitation.link_used", "invitation.key_used",
                                                    "invitation.already_member", "idempotency.answer_lost"):
                return  # the last attempt, or an earlier one whose answer was lost, redeemed the key
            if code == "account.exists":  # an earlier attempt made the account and no more: log in with it
                body.update(account="existing", loginId=invitee)
            elif code == "invitation.redeem_in_progress":  # an interrupted attempt holds it until it runs out
                await asyncio.sleep(min(float(reply.headers.get("Retry-After", "2")), 5.0))
            else:
                self._unexpected("redeem", reply)

    async def inviting(self, owner: User, fault_over: asyncio.Event) -> None:
        done_after = False
        while not done_after:
            done_after = fault_over.is_set()
            await self.invitation(owner)

    async def permission_request(self) -> None:
        assert self.admin is not None and self.operator is not None
        user_id = f"drill_{uuid.uuid4().hex[:10]}@example.jp"
        self.user_ids.append(user_id)
        body = {"kind": "new", "userId": user_id, "nameKanji": "訓練 花子", "nameKana": "クンレン ハナコ",
                "contractor": "委託先A株式会社", "permissions": {"TAXIS": "1011", "JOHS": "J1010"}}
        filed = await self.call("permission-file", "POST", "/api/v1/permission-requests", self.admin, json=body,
                                settled=lambda r: r.status_code == 400 and
                                any(e.get("field") == "userId" for e in r.json().get("errors", [])))
        if filed.status_code != 201:  # an earlier attempt filed it: the ID is ours already
            found = await self.call("permission-find", "GET", f"/api/v1/permission-requests?userId={user_id}",
                                    self.admin)
            [request] = found.json()
            request_id = request["requestId"]
        else:
            request_id = filed.json()["requestId"]
        self.request_ids.append(request_id)
        accepted = await self.call("permission-accept", "POST",
                                   f"/api/v1/operator/permission-requests/{request_id}/accept", self.operator,
                                   settled=lambda r: r.status_code == 409)
        if accepted.status_code != 200:
            accepted = await self.call("permission-get", "GET", f"/api/v1/permission-requests/{request_id}",
                                       self.operator)
        await self.call("permission-batch", "POST", "/api/v1/operator/permission-batches", self.operator,
                        json={"batchDate": accepted.json()["batchDate"]})

    async def filing(self, fault_over: asyncio.Event) -> None:
        done_after = False
        while not done_after:
            done_after = fault_over.is_set()
            await self.permission_request()
            await asyncio.sleep(PACE_S * 2)

    async def external_idp(self, user: User, fault_over: asyncio.Event) -> None:
        """An identity provider reporting logins; it retries a report until the broker takes it."""
        producer = make_producer(self.settings, "drill-idp")
        started = False
        try:
            after = 0
            while after < self.scale.rounds:
                after += fault_over.is_set()
                event = lev.ExternalLoginReported(login_id=user.login_id, at=datetime.now(UTC), provider=IDP)
                value = encode(new_envelope(event, source=IDP, subject=user.login_id))
                while True:
                    try:
                        if not started:
                            await producer.start()
                            started = True
                        await producer.send_and_wait(AUTH_LOGINS.name, value, key=user.login_id.encode())
                        break
                    except Exception:  # the broker is away: keep the report and try again
                        await asyncio.sleep(1)
                self.external_logins[user.login_id] += 1
                await asyncio.sleep(PACE_S)
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def run(self, during: Callable[[], Awaitable[None]] | None = None, lead_s: float = 0.5) -> None:
        """Every actor at once; ``during`` injects the fault once the load is under way."""
        fault_over = asyncio.Event()
        if during is None:
            fault_over.set()
        actors = [*(self.step_ups_and_logins(o, fault_over) for o in self.owners),
                  *(self.inviting(o, fault_over) for o in self.inviters),
                  *(self.filing(fault_over) for _ in range(self.scale.filers)),
                  *(self.external_idp(u, fault_over) for u in self.external)]
        tasks = [asyncio.create_task(a) for a in actors]
        phase(f"workload started: {len(tasks)} actors")
        try:
            if during is not None:
                await asyncio.sleep(lead_s)
                phase("fault")
                try:
                    await during()
                finally:
                    fault_over.set()
                    phase("fault over")
            await asyncio.gather(*tasks)
            phase(f"workload done: {sum(self.statuses.values())} calls, {len(self.invitees)} invitations, "
                  f"{len(self.request_ids)} permission requests")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class TargetSystems:
    """Stands in for TAXIS, JOHS, … for one drill: answers every grant command of the drill's companies.

    Reads the grant topics without a consumer group (from the start, again after any error, so a
    restarted in-memory broker is read afresh) and answers each command id once, retrying an answer
    until the broker takes it.
    """

    def __init__(self, settings: Settings, companies: set[str]) -> None:
        self.settings = settings
        self.companies = companies
        self.answered: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self._answer_all()
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker went away: start over once it is back
                await asyncio.sleep(1)

    async def _answer_all(self) -> None:
        consumer = make_consumer(self.settings, *(t.name for t in GRANT_TOPICS), group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 request_timeout_ms=10_000)
        producer = make_producer(self.settings, "drill-target-systems")
        await consumer.start()
        try:
            await producer.start()
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        _, command = decode(record.value)
                        if not isinstance(command, pev.GrantCommanded) or command.company_id not in self.companies \
                                or command.command_id in self.answered:
                            continue
                        ack = pev.GrantAcknowledged(command_id=command.command_id, request_id=command.request_id,
                                                    system=command.system, user_id=command.user_id,
                                                    outcome="applied")
                        envelope = new_envelope(ack, source=f"drill/{command.system.lower()}",
                                                subject=command.request_id)
                        await producer.send_and_wait(PERMISSIONS_ACKS.name, encode(envelope),
                                                     key=command.request_id.encode())
                        self.answered.add(command.command_id)
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
            with contextlib.suppress(Exception):
                await consumer.stop()
