"""Password re-issue (mailed link + secret answer) against the real database: right answer, lock after 5 wrong."""

from __future__ import annotations

from typing import Any

from lifecycle_helpers import PASSWORD, mails, make_lifecycle, outbox, refused

from kagi_lifecycle.domain import secret_question as sq
from kagi_shared.events import lifecycle as ev
from kagi_shared.settings import Settings

NEW = "Brand-new-2026!"


async def link(lc: Any, store: Any, login_id: str) -> str:
    await lc.credentials.request_reset(login_id, None)
    mail = [m for m in await mails(store, login_id) if m.template == "password_reset"][-1]
    return str(mail.variables["reset_url"]).rsplit("token=", 1)[1]



async def test_right_answer_resets_the_password_and_ends_sessions(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    account = await lc.service.create_account("sq-ok@example.jp", PASSWORD, ["owner"])
    bare = await refused(lc.secret_questions.register(account.id, sq.QUESTIONS[0], "x"))
    assert bare.code == "secret_question.reauthentication_required"
    await lc.secret_questions.register(account.id, sq.QUESTIONS[0], " ＹＡＭＡＤＡ ", current_password=PASSWORD)
    assert [m.template for m in await mails(store, "sq-ok@example.jp")] == ["secret_question_changed"]
    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.secret_question == sq.QUESTIONS[0]
    assert stored.secret_answer_hash is not None and stored.secret_answer_hash.startswith("$argon2id$")
    assert "yamada" not in stored.secret_answer_hash.lower()

    assert await lc.secret_questions.question("SQ-OK@example.jp", "10.0.0.1") == sq.QUESTIONS[0]
    token = await link(lc, store, "sq-ok@example.jp")
    missing = await refused(lc.credentials.complete_reset(token, NEW))
    assert missing.code == "password_reset.answer_required" and missing.extra == {"question": sq.QUESTIONS[0]}
    wrong = await refused(lc.credentials.complete_reset(token, NEW, answer="suzuki", client_ip="10.0.0.1"))
    assert wrong.code == "password_reset.answer_wrong" and wrong.extra == {"remainingAttempts": 4}
    weak = await refused(lc.credentials.complete_reset(token, "short", answer="yamada"))
    assert weak.code == "password.policy_violation"

    await lc.credentials.complete_reset(token, NEW, answer="Yamada", client_ip="10.0.0.1")
    after = await lc.accounts.get(account.id)
    assert after is not None and after.session_version == stored.session_version + 1
    assert [m.template for m in await mails(store, "sq-ok@example.jp")][-1] == "password_changed"
    assert after.secret_failures == 0 and after.status == "active"
    assert (await lc.service.login("sq-ok@example.jp", NEW)).id == account.id
    assert (await refused(lc.service.login("sq-ok@example.jp", PASSWORD))).code == "auth.invalid_credentials"
    assert any(isinstance(e, ev.PasswordChanged) and e.via == "reset" for _, e in await outbox(store))


async def test_five_wrong_answers_lock_with_reason_secret_question(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    account = await lc.service.create_account("sq-lock@example.jp", PASSWORD, ["owner"])
    await lc.secret_questions.register(account.id, "初めて行った海外旅行の行き先は？", "ハワイ", stepped_up=True)
    token = await link(lc, store, "sq-lock@example.jp")
    remaining = []
    for _ in range(4):
        problem = await refused(lc.credentials.complete_reset(token, NEW, answer="グアム", client_ip="10.0.0.2"))
        assert problem.code == "password_reset.answer_wrong"
        remaining.append(problem.extra["remainingAttempts"])
    assert remaining == [4, 3, 2, 1]
    fifth = await refused(lc.credentials.complete_reset(token, NEW, answer="グアム", client_ip="10.0.0.2"))
    assert fifth.code == "auth.account_locked" and fifth.extra == {"reason": "secret_question"}

    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.status == "locked" and stored.lock_reason == "secret_question"
    assert stored.session_version == 2  # the question's registration ended sessions, then the lock
    locks = [e for _, e in await outbox(store) if isinstance(e, ev.AccountLocked)]
    assert [(e.account_id, e.reason) for e in locks] == [(account.id, "secret_question")]
    mail = (await mails(store, "sq-lock@example.jp"))[-1]
    assert mail.template == "secret_question_lock" and mail.category == "security"
    # Even the right answer no longer helps, and the password is unchanged.
    after = await refused(lc.credentials.complete_reset(token, NEW, answer="ハワイ"))
    assert after.code == "auth.account_locked"
    assert (await refused(lc.service.login("sq-lock@example.jp", PASSWORD))).code == "auth.account_locked"


async def test_a_right_answer_resets_the_wrong_answer_count(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    account = await lc.service.create_account("sq-count@example.jp", PASSWORD, ["owner"])
    await lc.secret_questions.register(account.id, sq.QUESTIONS[1], "pochi", current_password=PASSWORD)
    token = await link(lc, store, "sq-count@example.jp")
    for _ in range(4):
        await refused(lc.credentials.complete_reset(token, NEW, answer="tama"))
    await lc.credentials.complete_reset(token, NEW, answer="POCHI")
    second = await link(lc, store, "sq-count@example.jp")
    problem = await refused(lc.credentials.complete_reset(second, "Another-new-2026!", answer="tama"))
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
    # An account without a question re-issues by the link alone (the seed's flow for it).
    await lc.credentials.complete_reset(await link(lc, store, "sq-none@example.jp"), NEW)
    assert (await lc.service.login("sq-none@example.jp", NEW)).login_id == "sq-none@example.jp"


async def test_bad_registration_names_the_field_and_requests_are_rate_limited(settings: Settings,
                                                                              store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    account = await lc.service.create_account("sq-bad@example.jp", PASSWORD, ["owner"])
    bad = await refused(lc.secret_questions.register(account.id, "あ" * 101, " ", current_password=PASSWORD))
    assert bad.code == "request.invalid"
    assert [e.field for e in bad.errors] == ["question", "answer"]
    for _ in range(settings.lifecycle.reset_per_login_id):
        await lc.secret_questions.question("sq-bad@example.jp", None)
    limited = await refused(lc.secret_questions.question("sq-bad@example.jp", None))
    assert limited.code == "rate_limited"
