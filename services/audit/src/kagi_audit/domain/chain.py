"""The hash chain of the audit ledger. Pure.

Each entry's hash covers the previous entry's hash and the entry's canonical JSON, so
editing, removing or reordering any entry changes every hash after it: ``verify``
names the first entry where the stored chain and the recomputed one part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import msgspec

GENESIS = "0" * 64

_canonical = msgspec.json.Encoder(order="sorted")


def entry_hash(prev_hash: str, seq: int, entry: dict[str, Any]) -> str:
    payload = _canonical.encode({"prev": prev_hash, "seq": seq, "entry": entry})
    return hashlib.sha256(payload).hexdigest()


class Link(msgspec.Struct, frozen=True):
    seq: int
    prev_hash: str
    hash: str
    entry: dict[str, Any]


class Verdict(msgspec.Struct, frozen=True, rename="camel"):
    ok: bool
    entries: int
    broken_at: int | None = None
    reason: str | None = None


def next_link(last: Link | None, entry: dict[str, Any]) -> Link:
    seq = last.seq + 1 if last else 1
    prev = last.hash if last else GENESIS
    return Link(seq=seq, prev_hash=prev, hash=entry_hash(prev, seq, entry), entry=entry)


def verify(links: Iterable[Link]) -> Verdict:
    expected_prev, expected_seq, count = GENESIS, 1, 0
    for link in links:
        count += 1
        if link.seq != expected_seq:
            return Verdict(ok=False, entries=count, broken_at=expected_seq,
                           reason=f"entry {expected_seq} is missing (found {link.seq})")
        if link.prev_hash != expected_prev:
            return Verdict(ok=False, entries=count, broken_at=link.seq, reason="previous-hash link broken")
        if entry_hash(link.prev_hash, link.seq, link.entry) != link.hash:
            return Verdict(ok=False, entries=count, broken_at=link.seq, reason="entry was altered")
        expected_prev, expected_seq = link.hash, link.seq + 1
    return Verdict(ok=True, entries=count)
