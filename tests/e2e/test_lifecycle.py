"""Account lifecycle end to end: the inactivity ladder moved with ``kagi lifecycle sweep --as-of``, sessions
ending on lock and password change, unlock requests, password reset by mail, expired passwords."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from kagi_lifecycle.bootstrap import ladder_days
from kagi_lifecycle.domain.ladder import ladder_for
from kagi_lifecycle.service.accounts import new_period
from kagi_shared.events import new_envelope
from kagi_shared.events.lifecycle import ExternalLoginReported
from kagi_shared.jst import jp_slash_date, to_jst
from kagi_shared.kafka import make_producer, publish
from kagi_shared.mongo import database_name, make_client
from kagi_shared.settings import Settings
from kagi_shared.topics import AUTH_LOGINS
from tests.e2e.conftest import age_password, create_user, wait_for_mail

KAGI = str(Path(sys.executable).parent / "kagi")


async def kagi(*args: str) -> Any:
    """Run the ``kagi`` command (the test environment's settings are in os.environ) and decode its JSON."""
    process = await asyncio.create_subprocess_exec(KAGI, *args, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return json.loads(out)


async def test_warning_mail_after_120_days_then_a_login_restarts_the_period(settings: Settings,
                                                                            gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    operator = await create_user(settings, gateway, ["operator"])
    as_of = (datetime.now(UTC) + timedelta(days=121)).isoformat()

    preview = await gateway.get("/api/v1/operator/lifecycle/preview", params={"asOf": as_of}, headers=operator.auth)
    assert preview.status_code == 200, preview.text
    assert user.login_id in [row["loginId"] for row in preview.json()["warning1"]]
    owner_preview = await gateway.get("/api/v1/operator/lifecycle/preview", headers=user.auth)
    assert owner_preview.json()["code"] == "auth.forbidden"
    cli_preview = await kagi("lifecycle", "preview", "--as-of", as_of)
    assert user.login_id in [row["loginId"] for row in cli_preview["warning1"]]

    first = await kagi("lifecycle", "sweep", "--as-of", as_of)
    assert first["applied"]["warning1"] >= 1
    [mail] = await wait_for_mail(settings, user.login_id)
    assert mail.subject == f"[{settings.brand.name}] 長期未使用 ID 通知メール (警告 1)"
    last_login = datetime.fromisoformat((await gateway.get("/api/v1/me", headers=user.auth)).json()["lastLoginAt"])
    lock_day = ladder_for(to_jst(last_login).date()).login_deadline
    assert f"最終ログイン ({jp_slash_date(last_login)}) されてから 120日以上ご利用されていません。" in mail.body
    assert f"{jp_slash_date(lock_day)}までにログインいただきますようお願いいたします。" in mail.body

    again = await kagi("lifecycle", "sweep", "--as-of", as_of)
    assert again["applied"] == {"warning1": 0, "warning2": 0, "lock": 0, "purge": 0}  # nothing sent twice

    # The user logs in: a new period starts, so the same moment warns again, for the new period.
    login = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": user.password})
    assert login.status_code == 200
    restarted = await kagi("lifecycle", "sweep", "--as-of", as_of)
    assert restarted["applied"]["warning1"] >= 1
    mails = await wait_for_mail(settings, user.login_id, 2)
    assert [m.subject for m in mails] == [mail.subject, mail.subject]


async def test_operator_lock_ends_sessions_and_an_unlock_request_restores_access(settings: Settings,
                                                                                 gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    operator = await create_user(settings, gateway, ["operator"])
    me = (await gateway.get("/api/v1/me", headers=user.auth)).json()
    assert (await gateway.get("/api/v1/me", headers=user.auth)).status_code == 200

    locked = await gateway.post(f"/api/v1/operator/accounts/{me['accountId']}/lock", headers=operator.auth)
    assert locked.status_code == 200, locked.text
    ended = await gateway.get("/api/v1/me", headers=user.auth)
    assert ended.status_code == 401
    assert ended.json()["code"] == "auth.session_ended"
    refused = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": user.password})
    assert refused.json()["code"] == "auth.account_locked"

    filed = await gateway.post("/api/v1/auth/unlock-requests",
                               json={"loginId": user.login_id, "message": "解除をお願いします"})
    unknown = await gateway.post("/api/v1/auth/unlock-requests", json={"loginId": "nobody-x@example.jp"})
    assert filed.status_code == unknown.status_code == 202
    assert filed.json() == unknown.json()  # nothing tells whether the ID exists

    pending = await gateway.get("/api/v1/operator/unlock-requests", params={"status": "pending"},
                                headers=operator.auth)
    [request] = [r for r in pending.json() if r["loginId"] == user.login_id]
    assert request["lockReason"] == "operator"
    approved = await gateway.post(f"/api/v1/operator/unlock-requests/{request['requestId']}/approve",
                                  json={"note": "本人確認済み"}, headers=operator.auth)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    twice = await gateway.post(f"/api/v1/operator/unlock-requests/{request['requestId']}/approve",
                               json={}, headers=operator.auth)
    assert twice.status_code == 409 and twice.json()["code"] == "unlock.already_decided"

    [mail] = await wait_for_mail(settings, user.login_id)
    assert mail.subject == f"[{settings.brand.name}] ロック解除申請の結果のお知らせ"
    assert "結果: 承認" in mail.body
    again = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": user.password})
    assert again.status_code == 200


async def test_password_change_ends_the_old_session_and_names_broken_rules(settings: Settings,
                                                                           gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    local = user.login_id.split("@")[0]
    weak = await gateway.post("/api/v1/me/password", headers=user.auth,
                              json={"currentPassword": user.password, "newPassword": f"{local}?"})
    assert weak.status_code == 400
    assert weak.headers["content-type"].startswith("application/problem+json")
    assert weak.json()["code"] == "password.policy_violation"
    assert [v["rule"] for v in weak.json()["violations"]] == ["password.invalid_characters",
                                                              "password.contains_email_local_part"]
    assert all(e["field"] == "newPassword" for e in weak.json()["errors"])

    changed = await gateway.post("/api/v1/me/password", headers=user.auth,
                                 json={"currentPassword": user.password, "newPassword": "Changed-pass-2026!"})
    assert changed.status_code == 200, changed.text
    stale = await gateway.get("/api/v1/me", headers=user.auth)
    assert stale.json()["code"] == "auth.session_ended"
    [mail] = await wait_for_mail(settings, user.login_id)
    assert mail.subject == f"[{settings.brand.name}] パスワード変更のお知らせ" and "パスワードの変更" in mail.body
    login = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id,
                                                           "password": "Changed-pass-2026!"})
    assert login.status_code == 200


async def test_password_reset_by_mailed_link_once(settings: Settings, gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    known = await gateway.post("/api/v1/auth/password-reset", json={"loginId": user.login_id})
    unknown = await gateway.post("/api/v1/auth/password-reset", json={"loginId": "nobody-y@example.jp"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    [mail] = [m for m in await wait_for_mail(settings, user.login_id) if "再設定" in m.subject]
    assert mail.subject == f"[{settings.brand.name}] パスワード再設定のご案内"
    match = re.search(r"token=([\w-]+)", mail.body)
    assert match, mail.body
    done = await gateway.post("/api/v1/auth/password-reset/complete",
                              json={"token": match.group(1), "newPassword": "Via-mail-2026!"})
    assert done.status_code == 200, done.text
    reused = await gateway.post("/api/v1/auth/password-reset/complete",
                                json={"token": match.group(1), "newPassword": "Via-mail-2027!"})
    assert reused.json()["code"] == "password_reset.link_used"
    assert (await gateway.get("/api/v1/me", headers=user.auth)).json()["code"] == "auth.session_ended"
    login = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": "Via-mail-2026!"})
    assert login.status_code == 200


async def test_expired_password_gets_a_token_for_the_change_only(settings: Settings,
                                                                 gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    await age_password(settings, user.login_id, days=186)
    expired = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": user.password})
    assert expired.status_code == 403
    body = expired.json()
    assert body["code"] == "auth.password_change_required"
    restricted = {"Authorization": f"Bearer {body['accessToken']}"}
    blocked = await gateway.get("/api/v1/me", headers=restricted)
    assert blocked.status_code == 403 and blocked.json()["code"] == "auth.password_change_required"
    changed = await gateway.post("/api/v1/me/password", headers=restricted,
                                 json={"currentPassword": user.password, "newPassword": "Renewed-pass-2026!"})
    assert changed.status_code == 200, changed.text
    login = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id,
                                                           "password": "Renewed-pass-2026!"})
    assert login.status_code == 200
    assert (await gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {login.json()['accessToken']}"})
            ).status_code == 200


async def test_an_external_login_on_the_topic_updates_last_login(settings: Settings,
                                                                 gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    reported = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    envelope = new_envelope(ExternalLoginReported(login_id=user.login_id.upper(), at=reported, provider="secom"),
                            source="secom-idp", subject=user.login_id)
    producer = make_producer(settings, "e2e-idp")
    await producer.start()
    try:
        await publish(producer, AUTH_LOGINS.name, envelope)
    finally:
        await producer.stop()
    seen = None
    for _ in range(300):  # the lifecycle worker consumes it; poll until it shows
        me = await gateway.get("/api/v1/me", headers=user.auth)
        seen = datetime.fromisoformat(me.json()["lastLoginAt"])
        if seen == reported:
            break
        await asyncio.sleep(0.1)
    assert seen == reported


async def test_five_wrong_passwords_mail_the_owner_and_end_open_sessions(settings: Settings,
                                                                         gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    assert (await gateway.get("/api/v1/me", headers=user.auth)).status_code == 200
    wrong = await asyncio.gather(*(gateway.post("/api/v1/auth/login",
                                                json={"loginId": user.login_id, "password": "Wrong-pass-1"})
                                   for _ in range(8)))
    assert {r.json()["code"] for r in wrong} == {"auth.invalid_credentials"}
    [mail] = await wait_for_mail(settings, user.login_id)
    assert mail.subject == f"[{settings.brand.name}] アカウントロックのお知らせ"
    assert "パスワード入力を 5回連続して間違えたため" in mail.body
    code = None
    for _ in range(150):  # the gateway trusts its cached session version for at most 5 seconds
        code = (await gateway.get("/api/v1/me", headers=user.auth)).json().get("code")
        if code == "auth.session_ended":
            break
        await asyncio.sleep(0.1)
    assert code == "auth.session_ended"


async def test_bad_lifecycle_input_is_refused_with_the_field(settings: Settings, gateway: httpx.AsyncClient) -> None:
    operator = await create_user(settings, gateway, ["operator"])
    huge = await gateway.post("/api/v1/auth/login", json={"loginId": "a@example.jp", "password": "x" * 10_000})
    assert huge.status_code == 400 and huge.json()["code"] == "request.invalid"
    empty = await gateway.post("/api/v1/auth/password-reset", json={"loginId": ""})
    assert empty.status_code == 400 and empty.json()["errors"][0]["field"] == "loginId"
    bad_moment = await gateway.get("/api/v1/operator/lifecycle/preview", params={"asOf": "someday"},
                                   headers=operator.auth)
    assert bad_moment.status_code == 400
    assert bad_moment.json()["errors"][0]["field"] == "asOf"
    missing = await gateway.post("/api/v1/operator/unlock-requests/no-such-id/approve", json={},
                                 headers=operator.auth)
    assert missing.status_code == 404 and missing.json()["code"] == "unlock.not_found"
    anonymous = await gateway.get("/api/v1/operator/unlock-requests")
    assert anonymous.status_code == 401


async def reset_link(settings: Settings, gateway: httpx.AsyncClient, login_id: str, count: int) -> str:
    assert (await gateway.post("/api/v1/auth/password-reset", json={"loginId": login_id})).status_code == 202
    mails = [m for m in await wait_for_mail(settings, login_id, count) if "パスワード再設定のご案内" in m.subject]
    match = re.search(r"token=([\w-]+)", mails[-1].body)
    assert match, mails[-1].body
    return match.group(1)


async def test_password_reset_needs_the_mailed_link_and_the_secret_answer(settings: Settings,
                                                                          gateway: httpx.AsyncClient) -> None:
    """Issue 15 finding 1: the answer alone set a new password; a bare access token changed the answer."""
    user = await create_user(settings, gateway, ["owner"])
    bare = await gateway.put("/api/v1/me/secret-question", headers=user.auth,
                             json={"question": "母親の旧姓は？", "answer": "attacker"})
    assert (bare.status_code, bare.json()["code"]) == (403, "secret_question.reauthentication_required")
    guessed = await gateway.put("/api/v1/me/secret-question", headers=user.auth,
                                json={"question": "母親の旧姓は？", "answer": "x", "currentPassword": "Wrong-pass-1!"})
    assert (guessed.status_code, guessed.json()["code"]) == (400, "password.current_wrong")
    registered = await gateway.put("/api/v1/me/secret-question", headers=user.auth,
                                   json={"question": "母親の旧姓は？", "answer": " ＳＡＴＯ ",
                                         "currentPassword": user.password})
    assert registered.status_code == 200, registered.text
    [notice] = [m for m in await wait_for_mail(settings, user.login_id) if "秘密の質問変更" in m.subject]
    assert "秘密の質問" in notice.body
    assert (await gateway.get("/api/v1/me", headers=user.auth)).json()["code"] == "auth.session_ended"
    anonymous = await gateway.put("/api/v1/me/secret-question", json={"question": "母親の旧姓は？", "answer": "x"})
    assert anonymous.status_code == 401

    asked = await gateway.post("/api/v1/auth/password-reset/question", json={"loginId": user.login_id})
    assert asked.status_code == 200 and asked.json() == {"loginId": user.login_id, "question": "母親の旧姓は？"}
    decoy = await gateway.post("/api/v1/auth/password-reset/question", json={"loginId": "nobody-sq@example.jp"})
    assert decoy.status_code == 200 and set(decoy.json()) == {"loginId", "question"}

    # The answer without the mailed link sets nothing: the old body (login ID + answer) is refused.
    alone = await gateway.post("/api/v1/auth/password-reset/answer",
                               json={"loginId": user.login_id, "answer": "sato", "newPassword": "Sq-reset-2026!"})
    assert alone.status_code == 400
    token = await reset_link(settings, gateway, user.login_id, 2)
    link_only = await gateway.post("/api/v1/auth/password-reset/complete",
                                   json={"token": token, "newPassword": "Sq-reset-2026!"})
    assert (link_only.status_code, link_only.json()["code"]) == (400, "password_reset.answer_required")
    assert link_only.json()["question"] == "母親の旧姓は？"
    wrong = await gateway.post("/api/v1/auth/password-reset/answer",
                               json={"token": token, "answer": "suzuki", "newPassword": "Sq-reset-2026!"})
    assert wrong.status_code == 400, wrong.text
    assert wrong.json()["code"] == "password_reset.answer_wrong" and wrong.json()["remainingAttempts"] == 4
    done = await gateway.post("/api/v1/auth/password-reset/complete",
                              json={"token": token, "answer": "sato", "newPassword": "Sq-reset-2026!"})
    assert done.status_code == 200, done.text
    changed = [m for m in await wait_for_mail(settings, user.login_id, 3) if "パスワード変更" in m.subject]
    assert changed and "パスワードの再設定" in changed[0].body
    login = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": "Sq-reset-2026!"})
    assert login.status_code == 200, login.text


async def test_five_wrong_secret_answers_lock_the_account(settings: Settings, gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    registered = await gateway.put("/api/v1/me/secret-question", headers=user.auth,
                                   json={"question": "好きな食べ物は？", "answer": "すし",
                                         "currentPassword": user.password})
    assert registered.status_code == 200, registered.text
    token = await reset_link(settings, gateway, user.login_id, 2)
    replies = []
    for _ in range(5):
        reply = await gateway.post("/api/v1/auth/password-reset/answer",
                                   json={"token": token, "answer": "てんぷら", "newPassword": "Sq-reset-2026!"})
        replies.append(reply.json())
    assert [r["code"] for r in replies] == ["password_reset.answer_wrong"] * 4 + ["auth.account_locked"]
    assert [r["remainingAttempts"] for r in replies[:4]] == [4, 3, 2, 1]
    assert replies[4]["reason"] == "secret_question"
    [mail] = [m for m in await wait_for_mail(settings, user.login_id, 3) if "ロック" in m.subject]
    assert mail.subject == f"[{settings.brand.name}] アカウントロックのお知らせ (秘密の質問)"
    assert "「秘密の質問」の回答を 5回連続して間違えたため" in mail.body
    login = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": user.password})
    assert login.json()["code"] == "auth.account_locked"


async def test_a_wrong_current_password_counts_toward_the_lock(settings: Settings,
                                                               gateway: httpx.AsyncClient) -> None:
    """Issue 15 finding 7: the password change was a guessing oracle outside the lockout."""
    user = await create_user(settings, gateway, ["owner"])
    replies = [await gateway.post("/api/v1/me/password", headers=user.auth,
                                  json={"currentPassword": f"Guess-{i}-2026!", "newPassword": "Taken-over-2026!"})
               for i in range(5)]
    assert [r.json()["code"] for r in replies] == ["password.current_wrong"] * 4 + ["auth.account_locked"]
    login = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": user.password})
    assert login.json()["code"] == "auth.account_locked"


async def test_a_sweep_that_locks_or_purges_ends_open_sessions(settings: Settings,
                                                               gateway: httpx.AsyncClient) -> None:
    locked_user = await create_user(settings, gateway, ["owner"])
    purged_user = await create_user(settings, gateway, ["owner"])
    sessions = {}
    for user in (locked_user, purged_user):
        login = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": user.password})
        assert login.status_code == 200, login.text
        sessions[user.login_id] = login.json()
        me = await gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {login.json()['accessToken']}"})
        assert me.status_code == 200, me.text

    # Move only these two accounts' last login back (181 days: past the lock date; 211: past the purge date,
    # missed sweeps, so purge straight away), so that a sweep now hits them and no other test's accounts.
    now = datetime.now(UTC)
    client = make_client(settings)
    try:
        accounts = client[database_name(settings, "lifecycle")]["accounts"]
        for user, days in ((locked_user, 181), (purged_user, 211)):
            base = now - timedelta(days=days)
            await accounts.update_one({"login_id": user.login_id}, {"$set": {
                "last_login_at": base, "issued_at": base, **new_period(base, ladder_days(settings))}})
    finally:
        await client.close()
    swept = await kagi("lifecycle", "sweep", "--as-of", now.isoformat())
    assert swept["applied"]["lock"] >= 1 and swept["applied"]["purge"] >= 1

    for user, login_code in ((locked_user, "auth.account_locked"), (purged_user, "auth.account_purged")):
        session = sessions[user.login_id]
        auth = {"Authorization": f"Bearer {session['accessToken']}"}
        ended = None
        deadline = asyncio.get_running_loop().time() + 10  # the gateway trusts its cached session for up to 5 s
        while asyncio.get_running_loop().time() < deadline:
            ended = await gateway.get("/api/v1/me", headers=auth)
            if ended.status_code != 200:
                break
            await asyncio.sleep(0.1)
        assert ended is not None and ended.status_code == 401, (user.login_id, ended and ended.text)
        assert ended.headers["content-type"].startswith("application/problem+json")
        assert ended.json()["code"] == "auth.session_ended"
        # The first login's token ends as well, and no token renews either session.
        assert (await gateway.get("/api/v1/me", headers=user.auth)).json()["code"] == "auth.session_ended"
        refreshed = await gateway.post("/api/v1/auth/refresh", json={"refreshToken": session["refreshToken"]})
        assert refreshed.status_code == 401 and refreshed.json()["code"] == "auth.refresh_invalid"
        again = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": user.password})
        assert again.status_code == 403 and again.json()["code"] == login_code
    assert (await gateway.post("/api/v1/auth/login", json={"loginId": locked_user.login_id,
                                                           "password": locked_user.password})
            ).json()["reason"] == "inactivity"
