"""The hash chain detects an edited, removed, inserted or reordered entry and names where."""

from __future__ import annotations

import msgspec

from kagi_audit.domain.chain import GENESIS, Link, next_link, verify


def chain(n: int) -> list[Link]:
    links: list[Link] = []
    for i in range(n):
        links.append(next_link(links[-1] if links else None, {"action": f"POST /x/{i}", "actorId": "op-1"}))
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
    links[1] = next_link(links[0], forged_entry)  # the forger recomputes this entry's own hash …
    verdict = verify(links)
    assert not verdict.ok and verdict.broken_at == 3  # … but entry 3 still points at the original
    assert verdict.reason == "previous-hash link broken"
