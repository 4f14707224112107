"""The keyed hash chain of the audit ledger and its signed checkpoints. Pure.

Each entry's hash is an HMAC (key outside the database, ``KAGI_SECURITY_AUDIT_KEY``) over the previous
entry's hash and the entry's canonical JSON: editing, removing or reordering any entry changes every hash after
it, and someone who can write the database but lacks the key cannot recompute them. A checkpoint (how many
entries, the head's hash, signed with the same key under another label) goes to ``audit.checkpoints`` after
every append, outside the database. ``verify`` checks the chain against every checkpoint ever published: at
each one's count the chain must end in that checkpoint's head. Cutting off the tail (a chain consistent in
itself) is found by the latest, which vouches for more entries; cutting it off and letting new events take
the removed places (the worker chains them and signs a checkpoint of the same length) is found by the earlier
checkpoints of those counts, which named other heads.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec

GENESIS = "0" * 64

_canonical = msgspec.json.Encoder(order="sorted")


def _subkey(key: bytes, purpose: bytes) -> bytes:
    """One key, two uses kept apart: a chain hash can never pass for a checkpoint signature."""
    return hmac.new(key, b"kagi-audit/" + purpose, hashlib.sha256).digest()


def entry_hash(key: bytes, prev_hash: str, seq: int, entry: dict[str, Any]) -> str:
    payload = _canonical.encode({"prev": prev_hash, "seq": seq, "entry": entry})
    return hmac.new(_subkey(key, b"chain"), payload, hashlib.sha256).hexdigest()


class Link(msgspec.Struct, frozen=True):
    seq: int
    prev_hash: str
    hash: str
    entry: dict[str, Any]


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    entries: int
    head_hash: str
    at: datetime
    signature: str = ""


def _checkpoint_payload(entries: int, head_hash: str, at: datetime) -> bytes:
    return _canonical.encode({"entries": entries, "head": head_hash, "at": at.isoformat()})


def sign_checkpoint(key: bytes, head: Link, at: datetime) -> Checkpoint:
    signature = hmac.new(_subkey(key, b"checkpoint"), _checkpoint_payload(head.seq, head.hash, at),
                         hashlib.sha256).hexdigest()
    return Checkpoint(entries=head.seq, head_hash=head.hash, at=at, signature=signature)


def checkpoint_is_genuine(key: bytes, checkpoint: Checkpoint) -> bool:
    expected = hmac.new(_subkey(key, b"checkpoint"),
                        _checkpoint_payload(checkpoint.entries, checkpoint.head_hash, checkpoint.at),
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, checkpoint.signature)


class Verdict(msgspec.Struct, frozen=True, rename="camel"):
    ok: bool
    entries: int
    broken_at: int | None = None
    reason: str | None = None
    checkpoint_entries: int | None = None
    """How many entries the latest signed checkpoint vouches for (None: no checkpoint was available)."""


def next_link(key: bytes, last: Link | None, entry: dict[str, Any]) -> Link:
    seq = last.seq + 1 if last else 1
    prev = last.hash if last else GENESIS
    return Link(seq=seq, prev_hash=prev, hash=entry_hash(key, prev, seq, entry), entry=entry)


def verify(key: bytes, links: Iterable[Link], checkpoints: Sequence[Checkpoint]) -> Verdict:
    """The chain is intact, keyed, passes through the head of every signed checkpoint at its count, and is at
    least as long as the latest one says.

    ``checkpoints`` in the order they were published. Without one only an empty ledger passes: entries with
    nothing outside the database vouching for them could be any prefix of the real ledger.
    """
    latest = max(checkpoints, key=lambda c: c.entries) if checkpoints else None
    vouched = latest.entries if latest else None
    heads: dict[int, str] = {}
    for checkpoint in checkpoints:
        if not checkpoint_is_genuine(key, checkpoint):
            reason = ("the latest checkpoint's signature is not ours" if checkpoint is checkpoints[-1]
                      else f"the checkpoint of entry {checkpoint.entries} is not signed with our key")
            return Verdict(ok=False, entries=0, reason=reason, checkpoint_entries=vouched)
        if heads.setdefault(checkpoint.entries, checkpoint.head_hash) != checkpoint.head_hash:
            return Verdict(ok=False, entries=0, broken_at=checkpoint.entries, checkpoint_entries=vouched,
                           reason=f"two signed checkpoints name different entries {checkpoint.entries}: the ledger "
                                  "was cut back and written again from there")
    expected_prev, expected_seq, count = GENESIS, 1, 0
    for link in links:
        count += 1
        if link.seq != expected_seq:
            return Verdict(ok=False, entries=count, broken_at=expected_seq,
                           reason=f"entry {expected_seq} is missing (found {link.seq})", checkpoint_entries=vouched)
        if link.prev_hash != expected_prev:
            return Verdict(ok=False, entries=count, broken_at=link.seq, reason="previous-hash link broken",
                           checkpoint_entries=vouched)
        if not hmac.compare_digest(entry_hash(key, link.prev_hash, link.seq, link.entry), link.hash):
            return Verdict(ok=False, entries=count, broken_at=link.seq, reason="entry was altered",
                           checkpoint_entries=vouched)
        head = heads.get(link.seq)
        if head is not None and not hmac.compare_digest(link.hash, head):
            return Verdict(ok=False, entries=count, broken_at=link.seq,
                           reason="entry differs from the signed checkpoint", checkpoint_entries=vouched)
        expected_prev, expected_seq = link.hash, link.seq + 1
    if latest is None:
        if count:
            return Verdict(ok=False, entries=count, reason="no signed checkpoint vouches for the ledger")
        return Verdict(ok=True, entries=0)
    if count < latest.entries:
        return Verdict(ok=False, entries=count, broken_at=count + 1,
                       reason=f"the ledger ends at entry {count}; the latest checkpoint vouches for "
                              f"{latest.entries} (its tail was removed)", checkpoint_entries=vouched)
    return Verdict(ok=True, entries=count, checkpoint_entries=vouched)
