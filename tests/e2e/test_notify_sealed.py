"""Codes and reset links reach the mailbox but never sit readable on ``notify.requests`` (issue 15, finding 11).

The topic and its dead-letter topic keep what they hold for days, readable by whoever may consume them or holds
a copy of the broker's disks; what they hold is sealed under a key only the producers and notify have.
"""

from __future__ import annotations

import re

import httpx
import msgspec

from kagi_shared.kafka import make_consumer
from kagi_shared.settings import Settings
from kagi_shared.topics import NOTIFY_REQUESTS
from tests.e2e.conftest import code_in, create_user, wait_for_mail


async def raw_records(settings: Settings, *topics: str) -> list[bytes]:
    """Every record on ``topics`` from their beginning, as the broker stores them."""
    consumer = make_consumer(settings, *topics, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        out: list[bytes] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out += [m.value or b"" for m in messages]
        return out
    finally:
        await consumer.stop()


async def test_topic_holds_neither_the_code_nor_the_reset_link_the_mails_carry(
        settings: Settings, gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    assert (await gateway.post("/api/v1/me/step-up", headers=user.auth)).status_code == 201
    code = code_in((await wait_for_mail(settings, user.login_id))[0])
    assert (await gateway.post("/api/v1/auth/password-reset", json={"loginId": user.login_id})).status_code == 202
    [reset] = [m for m in await wait_for_mail(settings, user.login_id, count=2) if "再設定" in m.subject]
    match = re.search(r"token=([\w-]+)", reset.body)
    assert match, reset.body
    token = match.group(1)

    records = await raw_records(settings, NOTIFY_REQUESTS.name, f"{NOTIFY_REQUESTS.name}.dlt")
    mine = [msgspec.json.decode(r)["data"] for r in records if user.login_id.encode() in r]
    assert sorted(d["template"] for d in mine) == ["password_reset", "step_up_code"]  # the requests were read
    assert all(d["sealed"].startswith("v1.") and "variables" not in d for d in mine)
    for record in records:
        assert code.encode() not in record
        assert token.encode() not in record
    # The link still works: sealing changed where it can be read, not what the mail says.
    done = await gateway.post("/api/v1/auth/password-reset/complete",
                              json={"token": token, "newPassword": "Sealed-mail-2026!"})
    assert done.status_code == 200, done.text
