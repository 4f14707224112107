"""The embedded database: SecantusDB (``python -m kagi_local.embedded_db`` takes ``secantus``'s own arguments), with
one repair to how it keeps retryable-write records.

For every write sent outside a transaction with ``retryWrites`` (PyMongo's default), the server stores the reply so a
retry with the same session and ``txnNumber`` is answered, not run twice. It keeps up to 10,000 such records for
30 minutes, and on every lookup and every record it walks all of them for the stale ones; once the cap is reached it
also sorts all of them to drop the oldest. So a write costs about 3 ms of the server's single interpreter lock once
10,000 records are held (0.05 ms at 1,000), and a system under steady load slows down as the records pile up, until
the server restarts: the drills saw every API slow at once after a few minutes of load (issue #20).

Records are written in time order, so the stale ones and the ones over the cap are always the oldest: keeping them
in an ``OrderedDict`` (a repeated record moved to the end) makes pruning pop from the front, and a write looks at the
records it removes plus one. What is kept, replayed and evicted is unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from secantus import transactions
from secantus.cli import main as secantus_main

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


def repair() -> None:
    """Install the ordered records on SecantusDB's transaction registry (idempotent)."""
    Registry.__init__ = _init
    Registry.record_retryable = _record_retryable
    Registry._prune_retryable_locked = _prune_retryable_locked


def main() -> int:
    repair()
    return int(secantus_main() or 0)


if __name__ == "__main__":
    raise SystemExit(main())
