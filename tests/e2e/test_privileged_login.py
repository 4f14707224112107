"""Issue 15 finding 4: operators and company admins log in with TOTP; one address failing against many IDs is
throttled at the edge; ``kagi accounts unlock`` is the break-glass path."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest

from kagi_shared.settings import Settings, get_settings
from tests.e2e.conftest import create_user, enrol_totp, internal_account, wait_for_mail
from tests.support import client_from, gateway_app


async def test_an_operator_logs_in_with_a_totp_code_once_enrolled(settings: Settings,
                                                                  gateway: httpx.AsyncClient) -> None:
    login_id, password = await internal_account(settings, ["operator"], "priv")
    first = await gateway.post("/api/v1/auth/login", json={"loginId": login_id, "password": password})
    assert (first.status_code, first.json()["code"]) == (403, "auth.totp_enrolment_required")
    restricted = {"Authorization": f"Bearer {first.json()['accessToken']}"}
    # The enrolment token opens the enrolment only, not the operator's work.
    work = await gateway.get("/api/v1/operator/unlock-requests", headers=restricted)
    assert (work.status_code, work.json()["code"]) == (403, "auth.totp_enrolment_required")
    user = await enrol_totp(gateway, login_id, password, first)
    [mail] = await wait_for_mail(settings, login_id)
    assert mail.subject == f"[{settings.brand.name}] 2段階認証登録のお知らせ"

    no_code = await gateway.post("/api/v1/auth/login", json={"loginId": login_id, "password": password})
    assert (no_code.status_code, no_code.json()["code"]) == (401, "auth.totp_required")
    assert no_code.json()["errors"][0]["field"] == "totpCode"
    wrong = await gateway.post("/api/v1/auth/login", json={"loginId": login_id, "password": password,
                                                           "totpCode": "000000" if await user.totp() != "000000"
                                                           else "111111"})
    assert (wrong.status_code, wrong.json()["code"]) == (401, "auth.totp_invalid")
    code = await user.totp()
    ok = await gateway.post("/api/v1/auth/login", json={"loginId": login_id, "password": password, "totpCode": code})
    assert ok.status_code == 200, ok.text
    operator = {"Authorization": f"Bearer {ok.json()['accessToken']}"}
    assert (await gateway.get("/api/v1/operator/unlock-requests", headers=operator)).status_code == 200
    replay = await gateway.post("/api/v1/auth/login", json={"loginId": login_id, "password": password,
                                                            "totpCode": code})
    assert replay.json()["code"] == "auth.totp_invalid"  # a code works once


async def test_one_address_failing_against_many_ids_is_throttled_at_the_edge(
        settings: Settings, gateway: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    monkeypatch.setenv("KAGI_EDGE_LOGIN_FAILURES_PER_IP", "4")
    try:
        async with gateway_app() as app:  # a gateway in this process, in front of the running services
            async with client_from(app, "10.66.0.7") as sprayer:
                tries = [await sprayer.post("/api/v1/auth/login",
                                            json={"loginId": f"victim-{i}@example.jp", "password": "Guess-2026!"})
                         for i in range(4)]
                assert [r.json()["code"] for r in tries] == ["auth.invalid_credentials"] * 4
                # Even the right password of another ID now waits: nothing is checked, no ID is locked.
                held = await sprayer.post("/api/v1/auth/login",
                                          json={"loginId": owner.login_id, "password": owner.password})
                assert (held.status_code, held.json()["code"]) == (429, "edge.login_failures")
                assert int(held.headers["retry-after"]) >= 1
            async with client_from(app, "10.66.0.8") as other:
                fine = await other.post("/api/v1/auth/login",
                                        json={"loginId": owner.login_id, "password": owner.password})
                assert fine.status_code == 200, fine.text
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def kagi_unlock(login_id: str) -> subprocess.CompletedProcess[str]:
    """The operator's shell, with this run's settings (the test's database)."""
    return subprocess.run([sys.executable, "-m", "kagi_cli.main", "accounts", "unlock", login_id],  # noqa: S603
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


async def test_kagi_accounts_unlock_is_the_break_glass_path(settings: Settings, gateway: httpx.AsyncClient) -> None:
    operator = await create_user(settings, gateway, ["operator"])
    for _ in range(settings.security.login_lockout_threshold):
        await gateway.post("/api/v1/auth/login", json={"loginId": operator.login_id, "password": "Wrong-2026!"})
    locked = await gateway.post("/api/v1/auth/login", json={"loginId": operator.login_id,
                                                            "password": operator.password})
    assert locked.json()["code"] == "auth.account_locked"

    done = await asyncio.to_thread(kagi_unlock, operator.login_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"unlocked {operator.login_id} (lock reason was failed_logins")
    again = await gateway.post("/api/v1/auth/login", json={"loginId": operator.login_id, "password": operator.password,
                                                           "totpCode": await operator.totp()})
    assert again.status_code == 200, again.text
    auth = {"Authorization": f"Bearer {again.json()['accessToken']}"}
    entries: list[dict[str, object]] = []
    for _ in range(300):  # the unlock reaches the audit ledger through lifecycle's outbox
        ledger = await gateway.get("/api/v1/operator/audit", headers=auth)
        entries = [e for e in ledger.json() if e["action"] == "CLI kagi accounts unlock"
                   and e["target"] == operator.login_id]
        if entries:
            break
        await asyncio.sleep(0.2)
    assert entries and str(entries[0]["actorId"]).startswith("cli:")
    not_locked = await asyncio.to_thread(kagi_unlock, operator.login_id)
    assert not_locked.returncode == 1
    assert not_locked.stderr.splitlines() == [f"kagi: {operator.login_id}: unlock.not_locked "
                                              "(このアカウントはロックされていません。)"]
