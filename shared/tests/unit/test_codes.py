"""One-time codes: unambiguous, random, stored only as keyed hashes, forgiving of how people type them."""

from __future__ import annotations

import math

from kagi_shared import codes


def test_codes_use_only_the_unambiguous_alphabet() -> None:
    seen = set()
    for _ in range(200):
        code = codes.new_code(12)
        assert len(code) == 12
        seen.update(code)
    assert seen <= set(codes.UNAMBIGUOUS_ALPHABET)
    assert not seen & set("01OIL")


def test_codes_do_not_repeat() -> None:
    assert len({codes.new_code(12) for _ in range(2000)}) == 2000


def test_entropy_of_a_twelve_character_code() -> None:
    bits = 12 * math.log2(len(codes.UNAMBIGUOUS_ALPHABET))
    assert 59 < bits < 60  # 31 symbols: see the README's note on the SPEC's 60-bit figure


def test_hash_is_keyed_and_verification_forgives_case_spaces_and_hyphens() -> None:
    stored = codes.hash_code("ABCD2345EFGH", "pepper-1")
    assert "ABCD2345EFGH" not in stored
    assert codes.verify_code("abcd-2345 efgh", stored, "pepper-1")
    assert not codes.verify_code("ABCD2345EFGJ", stored, "pepper-1")
    assert not codes.verify_code("ABCD2345EFGH", stored, "pepper-2")
