"""Secret questions (秘密の質問) for password reset (SPEC §4, guide 6-1). Pure: no I/O.

A question is one of the fixed list or free text of at most 100 characters. Answers are compared after
normalisation (NFKC, trimmed, case-folded), so 'ＴＡＲＯ ' and 'taro' are the same answer; only the argon2id
hash of the normalised answer is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

QUESTIONS: tuple[str, ...] = (
    "母親の旧姓は？",
    "初めて飼ったペットの名前は？",
    "出身小学校の名前は？",
    "子どもの頃のあだ名は？",
    "好きな食べ物は？",
    "生まれた町の名前は？",
    "初めて買った車の車種は？",
    "尊敬する人物の名前は？",
)
MAX_QUESTION = 100
MAX_ANSWER = 100


def normalise_answer(answer: str) -> str:
    """NFKC, trimmed, case-folded (NFKC again: case folding can leave a non-normalised string)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", answer).strip().casefold())


def normalise_question(question: str) -> str:
    """Trimmed only: the question is shown back as the user wrote it (full-width ？ stays)."""
    return question.strip()


def _length_problem(text: str, missing: str, max_length: int) -> str | None:
    if not text:
        return missing
    if len(text) > max_length:
        return f"{max_length} 文字以内で入力してください。"
    return None


def question_problem(question: str) -> str | None:
    text = normalise_question(question)
    if problem := _length_problem(text, "質問を選択するか入力してください。", MAX_QUESTION):
        return problem
    if any(unicodedata.category(c).startswith("C") for c in text):
        return "使用できない文字が含まれています。"
    return None


def answer_problem(answer: str) -> str | None:
    return _length_problem(normalise_answer(answer), "答えを入力してください。", MAX_ANSWER)


def decoy_question(canonical_login_id: str, pepper: str) -> str:
    """The question shown for an ID without one (or unknown): always the same for the same ID."""
    digest = hmac.new(pepper.encode(), f"secret-question:{canonical_login_id}".encode(), hashlib.sha256).digest()
    return QUESTIONS[int.from_bytes(digest[:4], "big") % len(QUESTIONS)]


def remaining_attempts(failures: int, threshold: int) -> int:
    return max(threshold - failures, 0)
