"""Permission provisioning end to end: company → request → acceptance → batch → grants on the topics →
target-system acks → 処理完了, with the registration mails in var/mail/."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import httpx

from kagi_cli.mailbox import Mail
from kagi_shared.events import decode, new_envelope
from kagi_shared.events import permissions as ev
from kagi_shared.kafka import make_producer, publish, read_topic
from kagi_shared.settings import Settings
from tests.e2e.conftest import company_with_admin, wait_for_mail


async def grant_commands(settings: Settings, system: str, request_id: str) -> list[ev.GrantCommanded]:
    found = []
    for record in await read_topic(settings, f"permissions.grants.{system.lower()}"):
        _, event = decode(record.value)
        if isinstance(event, ev.GrantCommanded) and event.request_id == request_id:
            assert record.key == event.user_id.encode()
            found.append(event)
    return found


async def test_schedule_preview_is_public_and_matches_the_cli(settings: Settings, gateway: httpx.AsyncClient) -> None:
    reply = await gateway.get("/api/v1/permission-requests/schedule", params={"submittedOn": "2026-04-30"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"submittedOn": "2026-04-30", "acceptedOn": "2026-05-01", "batchDate": "2026-05-18",
                            "effective": {"TAXIS": "2026-05-26", "JOHS": "2026-05-26", "JUJU": "2026-05-29",
                                          "LOACUS": "2026-05-29"}}
    cli = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "kagi_cli.main", "calendar", "schedule", "--submitted-on", "2026-04-30"],
        capture_output=True, text=True, check=True, timeout=300)
    assert json.loads(cli.stdout) == reply.json()

    bad = await gateway.get("/api/v1/permission-requests/schedule", params={"submittedOn": "2019-02-30"})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in bad.json()["errors"]] == ["submittedOn"]


async def test_new_request_goes_through_the_batch_to_complete(settings: Settings, gateway: httpx.AsyncClient) -> None:
    operator, admin = await company_with_admin(settings, gateway)
    refused = await gateway.post("/api/v1/operator/companies", headers=admin.auth, json={})
    assert refused.status_code == 403

    user_id = f"Takuso_{uuid.uuid4().hex[:8]}@example.jp"
    body = {"kind": "new", "userId": user_id, "nameKanji": "託送 花子", "nameKana": "タクソウ ハナコ",
            "contractor": "委託先A株式会社", "permissions": {"TAXIS": "1110", "JOHS": "J1010"}}
    bad = await gateway.post("/api/v1/permission-requests", headers=admin.auth, json=body)
    assert bad.status_code == 400, bad.text
    assert bad.json()["code"] == "request.invalid"
    assert "1011" in {e["field"]: e["reason"] for e in bad.json()["errors"]}["permissions.TAXIS"]

    body["permissions"] = {"TAXIS": "1011", "JOHS": "J1010"}
    filed = await gateway.post("/api/v1/permission-requests", headers=admin.auth, json=body)
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["requestId"]
    assert filed.json()["statusLabel"] == "申請済"
    twin = await gateway.post("/api/v1/permission-requests", headers=admin.auth,
                              json={**body, "userId": user_id.lower()})
    assert twin.status_code == 400 and twin.json()["errors"][0]["field"] == "userId"

    accepted = await gateway.post(f"/api/v1/operator/permission-requests/{request_id}/accept", headers=operator.auth)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["statusLabel"] == "受付完了"
    batch = await gateway.post("/api/v1/operator/permission-batches", headers=operator.auth,
                               json={"batchDate": accepted.json()["batchDate"]})
    assert batch.status_code == 200, batch.text
    assert batch.json()["commands"] >= 3

    commands: list[ev.GrantCommanded] = []
    for _ in range(100):  # the worker's relay publishes the commands
        commands = [c for system in ("TAXIS", "JOHS", "INFOSITE")
                    for c in await grant_commands(settings, system, request_id)]
        if len(commands) == 3:
            break
        await asyncio.sleep(0.3)
    assert sorted((c.system, c.after) for c in commands) == [("INFOSITE", "yes"), ("JOHS", "J1010"),
                                                             ("TAXIS", "1011")]
    assert await grant_commands(settings, "JUJU", request_id) == []

    producer = make_producer(settings, "e2e-target-systems")
    await producer.start()
    try:
        for command in commands:  # the target systems acknowledge
            envelope = new_envelope(ev.GrantAcknowledged(
                command_id=command.command_id, request_id=request_id, system=command.system,
                user_id=command.user_id, outcome="applied"), source=f"target/{command.system.lower()}",
                subject=request_id)
            await publish(producer, "permissions.acks", envelope)
    finally:
        await producer.stop()

    view: dict[str, object] = {}
    for _ in range(100):
        reply = await gateway.get(f"/api/v1/permission-requests/{request_id}", headers=admin.auth)
        view = reply.json()
        if view["status"] == "complete":
            break
        await asyncio.sleep(0.3)
    assert view["display"] == {"progress": "処理完了", "TAXIS": "済", "JOHS": "済", "JUJU": "(不要)",
                               "LOACUS": "(不要)", "INFOSITE": "済"}

    guide, password = None, None
    for mail in await wait_for_mail_any(settings, user_id, 2):
        if "認証情報登録手順のご案内" in mail.subject:
            guide = mail
        if "ワンタイムパスワード" in mail.subject:
            password = mail
    assert guide is not None and "/registration/" in guide.body
    assert password is not None and "ワンタイムパスワード: " in password.body
    admin_mails = await wait_for_mail(settings, admin.login_id, count=2)
    assert any("処理完了" in m.body for m in admin_mails)

    listed = await gateway.get("/api/v1/permission-requests", headers=admin.auth, params={"userId": user_id})
    assert [r["requestId"] for r in listed.json()] == [request_id]

    # Access review (棚卸): the new user is listed with permissions; a revoke becomes a revoke request.
    users = await gateway.get("/api/v1/company/users", headers=admin.auth)
    assert [(u["userId"], u["permissionLabels"]["TAXIS"]) for u in users.json()] == [(user_id, "1011:更新権限あり")]
    review = await gateway.post("/api/v1/access-reviews", headers=admin.auth)
    assert review.status_code == 201, review.text
    review_id = review.json()["reviewId"]
    decided = await gateway.post(f"/api/v1/access-reviews/{review_id}/decisions", headers=admin.auth,
                                 json={"userId": user_id, "decision": "revoke"})
    assert decided.status_code == 200, decided.text
    revoke_id = decided.json()["users"][0]["requestId"]
    revoke = (await gateway.get(f"/api/v1/permission-requests/{revoke_id}", headers=admin.auth)).json()
    assert (revoke["kind"], revoke["statusLabel"]) == ("revoke", "処理中")
    report = await gateway.get(f"/api/v1/access-reviews/{review_id}/report.csv", headers=admin.auth)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    assert "attachment" in report.headers["content-disposition"]
    assert f"{user_id},託送 花子" in report.text and revoke_id in report.text


async def wait_for_mail_any(settings: Settings, to: str, count: int) -> list[Mail]:
    """Mail to ``to`` whatever the case the sink recorded it in."""
    for address in (to, to.lower()):
        try:
            return await wait_for_mail(settings, address, count, timeout_s=60)
        except AssertionError:
            continue
    raise AssertionError(f"no mail to {to}")
