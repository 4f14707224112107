"""Secret-question rules: answer normalisation, question limits, the stable decoy."""

from __future__ import annotations

import pytest

from kagi_lifecycle.domain import secret_question as sq


@pytest.mark.parametrize(("typed", "stored"), [
    ("ＴＡＲＯ", "taro"),          # full-width letters (NFKC) and case
    ("  Taro\u3000", "taro"),      # ASCII and ideographic spaces trimmed
    ("ﾀﾛｳ", "タロウ"),              # half-width katakana (NFKC)
    ("Straße", "strasse"),         # case folding, not just lower()
    ("たろう", "たろう"),
])
def test_answers_are_compared_normalised(typed: str, stored: str) -> None:
    assert sq.normalise_answer(typed) == sq.normalise_answer(stored) == stored


def test_inner_spaces_and_different_kana_stay_distinct() -> None:
    assert sq.normalise_answer("taro yamada") != sq.normalise_answer("taroyamada")
    assert sq.normalise_answer("たろう") != sq.normalise_answer("タロウ")


def test_question_is_one_of_the_list_or_free_text_up_to_100_characters() -> None:
    assert all(sq.question_problem(q) is None for q in sq.QUESTIONS)
    assert sq.question_problem("あ" * 100) is None
    assert sq.question_problem("あ" * 101) is not None
    assert sq.question_problem("   ") is not None
    assert sq.question_problem("質問\x00") is not None
    assert sq.answer_problem("\u3000 ") is not None
    assert sq.answer_problem("x" * 101) is not None


def test_decoy_is_stable_per_id_and_from_the_list() -> None:
    first = sq.decoy_question("nobody@example.jp", "pepper")
    assert first in sq.QUESTIONS
    assert all(sq.decoy_question("nobody@example.jp", "pepper") == first for _ in range(5))
    assert len({sq.decoy_question(f"user{i}@example.jp", "pepper") for i in range(40)}) > 1


def test_remaining_attempts_never_negative() -> None:
    assert [sq.remaining_attempts(n, 5) for n in range(7)] == [5, 4, 3, 2, 1, 0, 0]
