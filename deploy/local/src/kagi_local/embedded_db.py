"""The embedded database: SecantusDB (``python -m kagi_local.embedded_db`` takes ``secantus``'s own arguments), with
three repairs: how it keeps retryable-write records, how long an awaiting ``getMore`` waits, and when an abandoned
transaction is aborted.

**Retryable-write records.**
For every write sent outside a transaction with ``retryWrites`` (PyMongo's default), the server stores the reply so a
retry with the same session and ``txnNumber`` is answered, not run twice. It keeps up to 10,000 such records for
30 minutes, and on every lookup and every record it walks all of them for the stale ones; once the cap is reached it
also sorts all of them to drop the oldest. So a write costs about 3 ms of the server's single interpreter lock once
10,000 records are held (0.05 ms at 1,000), and a system under steady load slows down as the records pile up, until
the server restarts: the drills saw every API slow at once after a few minutes of load (issue #20).

Records are written in time order, so the stale ones and the ones over the cap are always the oldest: keeping them
in an ``OrderedDict`` (a repeated record moved to the end) makes pruning pop from the front, and a write looks at the
records it removes plus one. What is kept, replayed and evicted is unchanged.

**Awaiting getMore.** mongod holds a ``getMore`` on a tailable, awaiting cursor (a change stream) until something
for *that* cursor arrives or ``maxTimeMS`` is out. SecantusDB wakes every waiting ``getMore`` on any write in the
server and answers it at once, usually with an empty batch. So every write anywhere cost each open change stream a
round trip and woke its client, and an idle system's few lease renewals kept all of them busy (each relay's
stream answered once a second instead of once per ``watch_await_s``). The repair asks again, within the same
budget, while the answer is empty and time is left, so the client sees mongod's behaviour. It re-reads a stream at
most once per ``EMPTY_WAKE_PAUSE_S``: under load every write wakes every waiting stream, and re-reading the oplog at
each of them would cost the server far more. A write for the stream is answered at once when the stream is waiting,
and at most one pause later when it lands during one (only while other writes go on).

**Abandoned transactions.** A transaction whose client died (a process killed between its writes and its commit)
keeps its uncommitted writes, and a plain write to one of those documents waits until the transaction ends, as on
mongod. mongod aborts a transaction idle past ``transactionLifetimeLimitSeconds`` (60 s) from a periodic job that
runs every half lifetime. SecantusDB aborts one only when some other transaction's statement reaches its registry, so
on a server where no transaction happens to run, the waiting write waits for ever: the drill that kills invite-api
mid-load saw step-ups hang for three minutes, until another service's transaction came by. The repair runs mongod's
periodic job.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from secantus import commands, transactions
from secantus.cli import main as secantus_main
from secantus.server import SecantusDBServer

Registry = transactions.TransactionRegistry


def _prune_retryable_locked(self: Any) -> None:
    records: OrderedDict[tuple[bytes, int], tuple[dict[str, Any], float, bytes]] = self._retryable
    cutoff = self._time() - transactions._RETRYABLE_RECORD_LIFETIME_SECONDS
    while records:
        _reply, at, _identity = next(iter(records.values()))
        if at >= cutoff and len(records) <= transactions._RETRYABLE_RECORD_MAX:
            return
        records.popitem(last=False)


def _record_retryable(self: Any, lsid_bytes: bytes, txn_number: int, identity: bytes, reply: dict[str, Any]) -> None:
    if not transactions._is_recordable_reply(reply):
        return
    with self._lock:
        key = (lsid_bytes, txn_number)
        self._retryable[key] = (transactions._strip_per_attempt_fields(reply), self._time(), identity)
        self._retryable.move_to_end(key)
        self._prune_retryable_locked()


_original_init = Registry.__init__


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    self._retryable = OrderedDict(self._retryable)


EMPTY_WAKE_PAUSE_S = 0.1

_original_get_more: Callable[[dict[str, Any], Any], dict[str, Any]] = commands._HANDLERS["getMore"]


def _get_more(doc: dict[str, Any], ctx: Any) -> dict[str, Any]:
    budget_ms = doc.get("maxTimeMS")
    if not isinstance(budget_ms, int) or budget_ms <= 0:
        return _original_get_more(doc, ctx)
    deadline = time.monotonic() + budget_ms / 1000
    while True:
        began = time.monotonic()
        reply = _original_get_more(doc, ctx)
        cursor = reply.get("cursor")
        if reply.get("ok") != 1.0 or not isinstance(cursor, dict) or cursor.get("nextBatch") or not cursor.get("id"):
            return reply
        now = time.monotonic()
        pause_s = max(began + EMPTY_WAKE_PAUSE_S - now, 0.0)  # a stream quiet for a while asks again at once
        if deadline - now <= pause_s + 0.001 or ctx.storage._shutting_down:
            return reply
        time.sleep(pause_s)
        doc = {**doc, "maxTimeMS": max(int((deadline - time.monotonic()) * 1000), 1)}


REAP_EVERY_MAX_S = 60.0
"""mongod's abort-expired-transactions job runs every half ``transactionLifetimeLimitSeconds``, at least once a
minute."""

_original_start: Callable[[SecantusDBServer], None] = SecantusDBServer.start


def _start(self: SecantusDBServer) -> None:
    _original_start(self)
    every_s = min(self.transactions._lifetime / 2, REAP_EVERY_MAX_S)
    threading.Thread(target=_reap, args=(self, every_s), name="kagi-transaction-reaper", daemon=True).start()


def _reap(server: SecantusDBServer, every_s: float) -> None:
    # ``stop`` sets the event before it aborts every transaction and closes storage, so a pass that began just
    # before finds them aborted already and touches no storage.
    while not server._stop_event.wait(every_s):
        server.transactions.prune_expired()


def repair() -> None:
    """Install the three repairs (idempotent)."""
    Registry.__init__ = _init
    Registry.record_retryable = _record_retryable
    Registry._prune_retryable_locked = _prune_retryable_locked
    commands._HANDLERS["getMore"] = _get_more
    SecantusDBServer.start = _start


def main() -> int:
    repair()
    return int(secantus_main() or 0)


if __name__ == "__main__":
    raise SystemExit(main())
