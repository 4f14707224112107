"""Password reset by secret question against the real database: right answer, lock after 5 wrong, decoys."""

from __future__ import annotations

from typing import Any

import pytest
from lifecycle_helpers import PASSWORD, mails, make_lifecycle, outbox

from kagi_lifecycle.domain import secret_question as sq
from kagi_shared.events import lifecycle as ev
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings

NEW = "Brand-new-2026!"


async def refused(awaitable: Any) -> Problem:
    with pytest.raises(Problem) as caught:
        await awaitable
    return caught.value


async def test_right_answer_resets_the_password_and_ends_sessions(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    account = await lc.service.create_account("sq-ok@example.jp", PASSWORD, ["owner"])
    await lc.secret_questions.register(account.id, sq.QUESTIONS[0], " ＹＡＭＡＤＡ ")
    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.secret_question == sq.QUESTIONS[0]
    assert stored.secret_answer_hash is not None and stored.secret_answer_hash.startswith("$argon2id$")
    assert "yamada" not in stored.secret_answer_hash.lower()

    assert await lc.secret_questions.question("SQ-OK@example.jp", "10.0.0.1") == sq.QUESTIONS[0]
    wrong = await refused(lc.secret_questions.answer("sq-ok@example.jp", "suzuki", NEW, "10.0.0.1"))
    assert wrong.code == "password_reset.answer_wrong" and wrong.extra == {"remainingAttempts": 4}
    weak = await refused(lc.secret_questions.answer("sq-ok@example.jp", "yamada", "short", "10.0.0.1"))
    assert weak.code == "password.policy_violation"

    await lc.secret_questions.answer("sq-ok@example.jp", "Yamada", NEW, "10.0.0.1")
    after = await lc.accounts.get(account.id)
    assert after is not None and after.session_version == stored.session_version + 1
    assert after.secret_failures == 0 and after.status == "active"
    assert (await lc.service.login("sq-ok@example.jp", NEW)).id == account.id
    assert (await refused(lc.service.login("sq-ok@example.jp", PASSWORD))).code == "auth.invalid_credentials"
    assert any(isinstance(e, ev.PasswordChanged) and e.via == "reset" for _, e in await outbox(store))


async def test_five_wrong_answers_lock_with_reason_secret_question(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    account = await lc.service.create_account("sq-lock@example.jp", PASSWORD, ["owner"])
    await lc.secret_questions.register(account.id, "初めて行った海外旅行の行き先は？", "ハワイ")
    remaining = []
    for _ in range(4):
        problem = await refused(lc.secret_questions.answer("sq-lock@example.jp", "グアム", NEW, "10.0.0.2"))
        assert problem.code == "password_reset.answer_wrong"
        remaining.append(problem.extra["remainingAttempts"])
    assert remaining == [4, 3, 2, 1]
    fifth = await refused(lc.secret_questions.answer("sq-lock@example.jp", "グアム", NEW, "10.0.0.2"))
    assert fifth.code == "auth.account_locked" and fifth.extra == {"reason": "secret_question"}

    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.status == "locked" and stored.lock_reason == "secret_question"
    assert stored.session_version == 1
    locks = [e for _, e in await outbox(store) if isinstance(e, ev.AccountLocked)]
    assert [(e.account_id, e.reason) for e in locks] == [(account.id, "secret_question")]
    [mail] = await mails(store, "sq-lock@example.jp")
    assert mail.template == "secret_question_lock" and mail.category == "security"
    # Even the right answer no longer helps, and the password is unchanged.
    after = await refused(lc.secret_questions.answer("sq-lock@example.jp", "ハワイ", NEW, "10.0.0.2"))
    assert after.code == "auth.account_locked"
    assert (await refused(lc.service.login("sq-lock@example.jp", PASSWORD))).code == "auth.account_locked"


async def test_a_right_answer_resets_the_wrong_answer_count(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    account = await lc.service.create_account("sq-count@example.jp", PASSWORD, ["owner"])
    await lc.secret_questions.register(account.id, sq.QUESTIONS[1], "pochi")
    for _ in range(4):
        await refused(lc.secret_questions.answer("sq-count@example.jp", "tama", NEW, None))
    await lc.secret_questions.answer("sq-count@example.jp", "POCHI", NEW, None)
    problem = await refused(lc.secret_questions.answer("sq-count@example.jp", "tama", "Another-new-2026!", None))
    assert problem.extra == {"remainingAttempts": 4}


async def test_unknown_ids_and_ids_without_a_question_get_a_stable_decoy(settings: Settings,
                                                                        store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    await lc.service.create_account("sq-none@example.jp", PASSWORD, ["owner"])
    for login_id in ("nobody@example.jp", "sq-none@example.jp"):
        first = await lc.secret_questions.question(login_id, "10.0.0.3")
        assert first in sq.QUESTIONS
        assert await lc.secret_questions.question(login_id, "10.0.0.3") == first
        replies = [await refused(lc.secret_questions.answer(login_id, "anything", NEW, "10.0.0.3"))
                   for _ in range(5)]
        assert [r.code for r in replies] == ["password_reset.answer_wrong"] * 4 + ["auth.account_locked"]
        assert [r.extra.get("remainingAttempts") for r in replies[:4]] == [4, 3, 2, 1]
    none = await lc.accounts.by_login_id("sq-none@example.jp")
    assert none is not None and none.status == "active"  # a decoy never locks a real account
    assert not [e for _, e in await outbox(store) if isinstance(e, ev.AccountLocked)]


async def test_bad_registration_names_the_field_and_requests_are_rate_limited(settings: Settings,
                                                                              store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    account = await lc.service.create_account("sq-bad@example.jp", PASSWORD, ["owner"])
    bad = await refused(lc.secret_questions.register(account.id, "あ" * 101, " "))
    assert bad.code == "request.invalid"
    assert [e.field for e in bad.errors] == ["question", "answer"]
    for _ in range(settings.lifecycle.reset_per_login_id):
        await lc.secret_questions.question("sq-bad@example.jp", None)
    limited = await refused(lc.secret_questions.question("sq-bad@example.jp", None))
    assert limited.code == "rate_limited"
