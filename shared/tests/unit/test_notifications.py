"""The one builder of notification requests: what lands in the outbox, and under which key."""

from __future__ import annotations

from typing import Any, cast

from kagi_shared.events.envelope import decode
from kagi_shared.events.notify import NotificationRequested
from kagi_shared.mongo import Tx
from kagi_shared.notifications import request_notification
from kagi_shared.topics import NOTIFY_REQUESTS


def unsaved_tx() -> Tx:
    # ``publish`` only queues outbox rows; no session is touched until the transaction commits.
    return Tx(cast(Any, None), cast(Any, None))


def test_a_mail_request_is_keyed_by_its_recipient_and_carries_the_correlation_id() -> None:
    tx = unsaved_tx()
    request_notification(tx, source="kagi/test", template="step_up_code", recipient="taro@example.jp",
                         variables={"code": "ABCD", "expires_at": "12時00分"}, category="security", account_id="acc-1",
                         correlation_id="req-1")
    [row] = tx.outbox
    assert row["topic"] == NOTIFY_REQUESTS.name and row["key"] == "taro@example.jp"
    envelope, event = decode(bytes(row["value"]))
    assert envelope.source == "kagi/test" and envelope.correlationid == "req-1"
    assert event == NotificationRequested(template="step_up_code", channel="mail", recipient="taro@example.jp",
                                          category="security", variables={"code": "ABCD", "expires_at": "12時00分"},
                                          account_id="acc-1")


def test_an_sms_request_may_be_keyed_by_another_subject() -> None:
    tx = unsaved_tx()
    request_notification(tx, source="kagi/test", template="sms_verification", channel="sms",
                         recipient="+819012345678", variables={"code": "123456", "expires_at": "12時00分"},
                         category="security", subject="acc-2")
    [row] = tx.outbox
    envelope, event = decode(bytes(row["value"]))
    assert row["key"] == "acc-2" and envelope.subject == "acc-2"
    assert isinstance(event, NotificationRequested) and event.channel == "sms" and event.account_id is None
    assert envelope.correlationid is None
