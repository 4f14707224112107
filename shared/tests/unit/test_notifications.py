"""The one builder of notification requests: what lands in the outbox, under which key, sealed."""

from __future__ import annotations

from typing import Any, cast

import pytest

from kagi_shared.events.envelope import decode
from kagi_shared.events.notify import Notice, NotificationRequested, opened
from kagi_shared.mongo import Tx
from kagi_shared.notifications import request_notification
from kagi_shared.sealing import SealError
from kagi_shared.settings import DEV_SECRETS
from kagi_shared.topics import NOTIFY_REQUESTS

KEY = DEV_SECRETS["notify_key"]  # the key the suite checks every queued request with
VARIABLES = {"code": "ABCD", "expires_at": "12時00分"}


def unsaved_tx() -> Tx:
    # ``publish`` only queues outbox rows; no session is touched until the transaction commits.
    return Tx(cast(Any, None), cast(Any, None))


def test_a_mail_request_is_keyed_by_its_recipient_sealed_and_carries_the_correlation_id() -> None:
    tx = unsaved_tx()
    request_notification(tx, KEY, source="kagi/test", template="step_up_code", recipient="taro@example.jp",
                         variables=VARIABLES, category="security", account_id="acc-1", correlation_id="req-1")
    [row] = tx.outbox
    assert row["topic"] == NOTIFY_REQUESTS.name and row["key"] == "taro@example.jp"
    assert b"ABCD" not in bytes(row["value"])  # the code never travels in clear
    envelope, event = decode(bytes(row["value"]))
    assert envelope.source == "kagi/test" and envelope.correlationid == "req-1"
    assert isinstance(event, NotificationRequested)
    assert opened(KEY, event) == Notice(template="step_up_code", channel="mail", recipient="taro@example.jp",
                                        category="security", variables=VARIABLES, account_id="acc-1")
    with pytest.raises(SealError):
        opened("another-key-entirely-0123456789-abcdefgh", event)


def test_an_sms_request_may_be_keyed_by_another_subject() -> None:
    tx = unsaved_tx()
    request_notification(tx, KEY, source="kagi/test", template="sms_verification", channel="sms",
                         recipient="+819012345678", variables={"code": "123456", "expires_at": "12時00分"},
                         category="security", subject="acc-2")
    [row] = tx.outbox
    envelope, event = decode(bytes(row["value"]))
    assert row["key"] == "acc-2" and envelope.subject == "acc-2"
    assert isinstance(event, NotificationRequested) and event.channel == "sms" and event.account_id is None
    assert envelope.correlationid is None
