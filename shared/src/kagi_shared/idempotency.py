"""``Idempotency-Key`` (the IETF httpapi draft, as payment APIs use it): a client that retries a create after a
timeout gets the first answer again instead of a second link, mail, rate-limit hit or event.

The gateway validates the key on the routes that declare ``opt={"idempotent": True}`` and passes it on with
whom the call is for (``Outgoing``, read by ``Services.send``). A service's internal API stores, per (caller or
client address, method and path, key), a claim before its handler runs and the first answer after it, for
24 hours (a TTL index). The claim is marked committed inside the handler's own transaction (``Store.transaction``
reads ``CLAIM``), so a claim whose work committed is never released for a second run: a retry is answered from
the stored answer, or ``409 idempotency.in_progress`` until it is there (``409 idempotency.answer_lost`` once it
is clear it never will be: its process ended between the commit and storing the answer).
A first attempt that changed nothing (refused with a 4xx, or failed before its commit) releases its claim, so
the retry runs as a new request.

Stored answers are sealed (``kagi_shared.sealing``): an answer may carry a secret shown once (an invitation key).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError, PyMongoError

from kagi_shared.logging import get_logger
from kagi_shared.problems import FieldError, Problem
from kagi_shared.sealing import Sealer, SealError

log = get_logger(__name__)

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from pymongo.asynchronous.database import AsyncDatabase

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
COLLECTION = "idempotency"
WINDOW = timedelta(hours=24)
LEASE = timedelta(seconds=60)
"""How long a running first attempt holds its key before a retry may take it over (the attempt's process died
before committing). Longer than the gateway's longest wait for a service (the chained 15 s)."""
ANSWER_LEASE = timedelta(seconds=10)
"""A committed claim's lease, set by the commit: its answer is stored milliseconds later, so after this its process
has ended or its database is out of reach."""
ORPHAN_GRACE = timedelta(seconds=10)
"""How long a committed claim whose lease lapsed waits, from the first retry that found it so (the database was up
then), before the answer counts as lost: a process that could not store it (the database went away right after
the commit) stores it at its next try, within ``KEEP_PAUSE_MAX_S`` of the database being back."""
ANSWER_GRACE = timedelta(minutes=5)
"""How long a process keeps trying to store an answer the database could not take right after the commit."""
KEEP_PAUSE_MAX_S = 2.0
RETRY_AFTER_S = 2
MAX_KEY_LENGTH = 255
SEAL_PURPOSE = "idempotency answers"


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a usable key (1–255 printable ASCII characters), or None."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        return f"1〜{MAX_KEY_LENGTH} 文字で指定してください。"
    if not all(" " < ch <= "~" for ch in key):
        return "半角英数字と記号 (空白を除く ASCII の印字可能文字) で指定してください。"
    return None


def invalid_key(reason: str) -> Problem:
    return Problem(400, "idempotency.key_invalid", "Idempotency-Key ヘッダーの値に誤りがあります。",
                   errors=[FieldError(HEADER, reason)])


@dataclass(slots=True)
class Outgoing:
    """The gateway's request carrying a key: whom its stored answer belongs to, and whether a service replayed."""

    key: str
    client_ip: str | None
    replayed: bool = False


OUTGOING: ContextVar[Outgoing | None] = ContextVar("kagi_idempotency_outgoing", default=None)


@dataclass(slots=True)
class Claim:
    """A service's claim on a key while its handler runs; ``committed`` once the handler's transaction has."""

    database: str
    id: str
    committed: bool = False

    def mark_committed(self) -> None:
        self.committed = True


CLAIM: ContextVar[Claim | None] = ContextVar("kagi_idempotency_claim", default=None)


def claim_id(principal: str, method: str, path: str, key: str) -> str:
    """The stored answer's id: one caller's key on one route never names another caller's or route's answer."""
    return hashlib.sha256("\x00".join((principal, method, path, key)).encode()).hexdigest()


def principal_of(headers: dict[bytes, bytes]) -> str:
    """Who the answer belongs to: the account the gateway admitted, else the client's address (anonymous routes)."""
    account = headers.get(b"x-kagi-account-id")
    if account:
        return "account:" + account.decode()
    return "ip:" + headers.get(b"x-kagi-client-ip", b"").decode()


class IdempotencyMiddleware:
    """Answers a POST carrying ``Idempotency-Key`` from the stored answer, or runs it once and stores the answer.

    A plain ASGI middleware on a service's router (``kagi_shared.service_api.internal_router``); requests without
    the header, or without the internal credential (the guard refuses those), pass through untouched."""

    def __init__(self, app: ASGIApp, database: Callable[[], AsyncDatabase[dict[str, Any]]], expected: str,
                 sealer: Sealer) -> None:
        self.app = app
        self.database = database
        self.expected = expected.encode()
        self.sealer = sealer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") != "POST":  # a websocket scope has no method
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        key = headers.get(HEADER.lower().encode())
        token = headers.get(b"x-internal-token", b"")
        if key is None or not self.expected or not hmac.compare_digest(token, self.expected):
            await self.app(scope, receive, send)
            return
        if reason := key_problem(key.decode("latin-1")):
            raise invalid_key(reason)
        body, receive = await _buffered(receive)
        db = self.database()
        collection = db[COLLECTION]
        id_ = claim_id(principal_of(headers), "POST", str(scope.get("path")), key.decode())
        fingerprint = hashlib.sha256(body).hexdigest()
        now = datetime.now(UTC)
        try:
            await collection.insert_one({"_id": id_, "fingerprint": fingerprint, "state": "running",
                                         "lease_until": now + LEASE, "expires_at": now + WINDOW})
        except DuplicateKeyError:
            if await self._answer_stored(collection, id_, fingerprint, now, send):
                return
        claim = Claim(db.name, id_)
        answer = _Recorder(send)
        reset = CLAIM.set(claim)
        try:
            await self.app(scope, receive, answer)
        except BaseException:
            if not claim.committed:
                await collection.delete_one({"_id": id_, "state": "running"})
            raise
        finally:
            CLAIM.reset(reset)
        if claim.committed or 200 <= answer.status < 300:
            done = {"state": "done", "status": answer.status, "content_type": answer.content_type,
                    "answer": self.sealer.seal(bytes(answer.body), id_.encode())}
            try:
                await collection.update_one({"_id": id_}, {"$set": done})
            except PyMongoError:
                # Committed, but the database went away before the answer was kept: keep trying in the background
                # (the reply has gone out already), so a retry after the outage is answered, not refused.
                task = asyncio.create_task(_keep_answer(collection, id_, done))
                _KEEPING.add(task)
                task.add_done_callback(_KEEPING.discard)
        else:  # refused or failed before any commit: nothing happened, so a retry runs anew
            await collection.delete_one({"_id": id_, "state": "running"})

    async def _answer_stored(self, collection: Any, id_: str, fingerprint: str, now: datetime, send: Send) -> bool:
        """Answer a key already claimed: replay, refuse, or (False) take over a lapsed claim and run."""
        found = await collection.find_one({"_id": id_})
        if found is None:  # expired between the insert and this read: take it anew
            await collection.insert_one({"_id": id_, "fingerprint": fingerprint, "state": "running",
                                         "lease_until": now + LEASE, "expires_at": now + WINDOW})
            return False
        if found["fingerprint"] != fingerprint:
            raise Problem(422, "idempotency.key_reused",
                          "この Idempotency-Key は別の内容の要求に使われています。新しいキーで送信してください。")
        if found["state"] == "done":
            try:
                content = self.sealer.open(found["answer"], id_.encode())
            except SealError:  # sealed under a key this process no longer holds: never run the work twice
                raise _in_progress() from None
            await _replay(send, found["status"], found.get("content_type"), content)
            return True
        lapsed = _aware(found["lease_until"]) < now
        if found["state"] == "committed" and lapsed:
            # The work committed and its answer is late: its process is storing it once the database is back, or
            # it ended between the commit and storing it. The first retry that finds it so notes when (the database
            # is up now); if the answer has not come a grace later it never will, and the work must not run again:
            # say so instead of "in progress" for 24 hours.
            orphan_since = found.get("orphan_since")
            if orphan_since is None:
                await collection.update_one({"_id": id_, "state": "committed", "orphan_since": None},
                                            {"$set": {"orphan_since": now}})
            elif _aware(orphan_since) + ORPHAN_GRACE < now:
                raise Problem(409, "idempotency.answer_lost",
                              "この要求は処理済みですが、結果を再表示できません。処理結果をご確認ください。")
            raise _in_progress()
        if lapsed and found["state"] == "running":
            taken = await collection.update_one({"_id": id_, "state": "running", "lease_until": found["lease_until"]},
                                                {"$set": {"lease_until": now + LEASE}})
            if taken.modified_count == 1:
                return False
        raise _in_progress()


def _aware(at: datetime) -> datetime:
    """A stored time in UTC, whether or not the database client hands back aware datetimes."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


_KEEPING: set[asyncio.Task[None]] = set()


async def _keep_answer(collection: Any, id_: str, done: dict[str, Any], pause_s: float = 1.0) -> None:
    """Store a committed claim's answer once the database is back, for up to ``ANSWER_GRACE``."""
    give_up = time.monotonic() + ANSWER_GRACE.total_seconds()
    while time.monotonic() < give_up:
        await asyncio.sleep(pause_s)
        try:
            await collection.update_one({"_id": id_}, {"$set": done})
            return
        except PyMongoError:
            pause_s = min(pause_s * 2, KEEP_PAUSE_MAX_S)
    log.warning("idempotency.answer_not_kept", claim=id_)


def _in_progress() -> Problem:
    return Problem(409, "idempotency.in_progress",
                   "同じ Idempotency-Key の要求を処理中です。しばらくしてから再度お試しください。",
                   headers={"Retry-After": str(RETRY_AFTER_S)})


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it to the app as one message."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。")
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    given = False

    async def replay_receive() -> Any:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay_receive


@dataclass(slots=True)
class _Recorder:
    """``send`` passing the answer on and keeping its status, media type and body."""

    send: Send
    status: int = 0
    content_type: str | None = None
    body: bytearray = field(default_factory=bytearray)

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", ()):
                if name.lower() == b"content-type":
                    self.content_type = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
        await self.send(message)


async def _replay(send: Send, status: int, content_type: str | None, content: bytes) -> None:
    headers = [(b"content-length", str(len(content)).encode()), (REPLAYED_HEADER.lower().encode(), b"true")]
    if content_type:
        headers.append((b"content-type", content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content, "more_body": False})
