"""The hash chain detects an edited, removed, inserted or reordered entry and names where."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from kagi_audit.domain.chain import GENESIS, Checkpoint, Link, next_link, sign_checkpoint
from kagi_audit.domain.chain import verify as verify_keyed

KEY = b"k" * 32


def verify(links: list[Link], checkpoint: Checkpoint | None = None, key: bytes = KEY):  # type: ignore[no-untyped-def]
    if checkpoint is None and links:
        checkpoint = sign_checkpoint(KEY, links[-1], datetime.now(UTC))
    return verify_keyed(key, links, [checkpoint] if checkpoint else [])


def chain(n: int) -> list[Link]:
    links: list[Link] = []
    for i in range(n):
        links.append(next_link(KEY, links[-1] if links else None, {"action": f"POST /x/{i}", "actorId": "op-1"}))
    return links


def test_an_untouched_chain_verifies() -> None:
    links = chain(5)
    assert links[0].prev_hash == GENESIS and [link.seq for link in links] == [1, 2, 3, 4, 5]
    assert verify(links).ok and verify(links).entries == 5
    assert verify([]).ok


def test_an_edited_entry_is_found() -> None:
    links = chain(5)
    links[2] = msgspec.structs.replace(links[2], entry={**links[2].entry, "action": "GET /harmless"})
    verdict = verify(links)
    assert not verdict.ok and verdict.broken_at == 3 and verdict.reason == "entry was altered"


def test_a_removed_entry_is_found() -> None:
    links = chain(5)
    del links[1]
    verdict = verify(links)
    assert not verdict.ok and verdict.broken_at == 2


def test_a_rehashed_forgery_still_breaks_the_next_link() -> None:
    links = chain(4)
    forged_entry = {**links[1].entry, "actorId": "someone-else"}
    links[1] = next_link(KEY, links[0], forged_entry)  # the forger recomputes this entry's own hash …
    verdict = verify(links)
    assert not verdict.ok and verdict.broken_at == 3  # … but entry 3 still points at the original
    assert verdict.reason == "previous-hash link broken"


def test_without_the_key_a_rewritten_chain_does_not_verify() -> None:
    """Someone who can write the database rewrites every hash from the edit on: without the key they are wrong."""
    links = chain(4)
    forged: list[Link] = links[:1]
    for link in links[1:]:
        entry = {**link.entry, "actorId": "someone-else"} if link.seq == 2 else link.entry
        forged.append(next_link(b"guessed-key" * 3, forged[-1], entry))
    verdict = verify(forged, sign_checkpoint(KEY, links[-1], datetime.now(UTC)))
    assert not verdict.ok and verdict.broken_at == 2 and verdict.reason == "entry was altered"


def test_a_removed_tail_is_found_against_the_latest_checkpoint() -> None:
    links = chain(6)
    latest = sign_checkpoint(KEY, links[-1], datetime.now(UTC))
    assert verify(links, latest).ok
    truncated = verify(links[:4], latest)  # consistent in itself: only the checkpoint knows it was longer
    assert not truncated.ok and truncated.broken_at == 5 and "tail was removed" in (truncated.reason or "")
    assert verify(links + chain(7)[6:], latest).ok  # appended after the checkpoint: fine


def test_a_checkpoint_must_be_signed_with_the_key_and_match_the_chain() -> None:
    links = chain(3)
    latest = sign_checkpoint(KEY, links[-1], datetime.now(UTC))
    lowered = msgspec.structs.replace(latest, entries=2, head_hash=links[1].hash)  # a forged, shorter checkpoint
    assert verify(links, lowered).reason == "the latest checkpoint's signature is not ours"
    other = sign_checkpoint(KEY, chain(3)[-1], datetime.now(UTC))
    assert verify(links, other).ok  # the same entries, the same chain
    elsewhere = sign_checkpoint(KEY, next_link(KEY, links[1], {"action": "POST /y", "actorId": "op-2"}),
                                datetime.now(UTC))
    assert verify(links, elsewhere).reason == "entry differs from the signed checkpoint"


def test_entries_with_no_checkpoint_are_not_vouched_for() -> None:
    assert verify_keyed(KEY, [], []).ok
    verdict = verify_keyed(KEY, chain(2), [])
    assert not verdict.ok and verdict.reason == "no signed checkpoint vouches for the ledger"


def test_every_checkpoint_holds_not_only_the_latest() -> None:
    """Cut back to 3 entries and written again to 5: whole, and its head matches a checkpoint of 5 entries."""
    at = datetime.now(UTC)
    original = chain(5)
    history = [sign_checkpoint(KEY, link, at) for link in original]
    rewritten = original[:3]
    for i in range(2):
        rewritten.append(next_link(KEY, rewritten[-1], {"action": f"POST /new/{i}", "actorId": "op-9"}))
    again = [*history, *(sign_checkpoint(KEY, link, at) for link in rewritten[3:])]
    assert verify_keyed(KEY, rewritten, [again[-1]]).ok  # what checking the latest alone accepted
    verdict = verify_keyed(KEY, rewritten, again)
    assert not verdict.ok and verdict.broken_at == 4 and "written again" in (verdict.reason or "")
    # Without the rewritten checkpoints (their outbox rows lost, say), the old ones still name other heads.
    verdict = verify_keyed(KEY, rewritten, history)
    assert not verdict.ok and verdict.broken_at == 4 and verdict.reason == "entry differs from the signed checkpoint"
    assert verify_keyed(KEY, original, history).ok
    forged = msgspec.structs.replace(history[1], head_hash=original[0].hash)
    assert verify_keyed(KEY, original, [forged, *history[2:]]).reason == \
        "the checkpoint of entry 2 is not signed with our key"
