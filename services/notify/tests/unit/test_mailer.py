"""SMTP_URL parsing: what a relay's URL may say, and clear refusals (without the password) of what it may not."""

from __future__ import annotations

import pytest

from kagi_notify.adapters.mailer import SmtpTarget


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://127.0.0.1:2525", SmtpTarget(host="127.0.0.1", port=2525)),
    ("smtp://smtp-relay", SmtpTarget(host="smtp-relay", port=25)),
    ("smtps://mail.example.jp", SmtpTarget(host="mail.example.jp", port=465, implicit_tls=True)),
    ("smtps://mail.example.jp:4650", SmtpTarget(host="mail.example.jp", port=4650, implicit_tls=True)),
    ("smtp://mail.example.jp:587?starttls=1", SmtpTarget(host="mail.example.jp", port=587, starttls=True)),
    ("smtp://mail.example.jp:587?starttls=true", SmtpTarget(host="mail.example.jp", port=587, starttls=True)),
    ("smtp://mail.example.jp:587?starttls", SmtpTarget(host="mail.example.jp", port=587, starttls=True)),
    ("smtp://mail.example.jp:25?starttls=0", SmtpTarget(host="mail.example.jp", port=25)),
    ("smtp://kagi:s3cret@mail.example.jp:587?starttls=yes",
     SmtpTarget(host="mail.example.jp", port=587, username="kagi", password="s3cret", starttls=True)),  # noqa: S106
    # URL-escaped user and password: '@', ':', '/', '%' and '#' may all appear in a password.
    ("smtp://notify%40kagi.example.jp:p%40ss%3Aw%2Frd%25%23@mail.example.jp:587",
     SmtpTarget(host="mail.example.jp", port=587, username="notify@kagi.example.jp",
                password="p@ss:w/rd%#")),  # noqa: S106
])
def test_smtp_urls_are_understood(url: str, expected: SmtpTarget) -> None:
    assert SmtpTarget.parse(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("http://mail.example.jp:25", "must look like smtp://host:port or smtps://host:port"),
    ("mail.example.jp:25", "must look like smtp://host:port"),
    ("smtp://:25", "must look like smtp://host:port"),
    ("smtp://mail.example.jp:99999", "bad port (1-65535)"),
    ("smtp://mail.example.jp:0", "bad port (1-65535)"),
    ("smtp://kagi:s3cret@mail.example.jp:smtp", "bad port (1-65535)"),
    ("smtp://mail.example.jp:587?starttls=maybe", "starttls must be 1/true/yes or 0/false/no"),
    ("smtps://mail.example.jp?starttls=1", "smtps:// is TLS already"),
    ("smtp://mail.example.jp:587?tls=1", "unknown parameters ['tls']"),
])
def test_bad_smtp_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^SMTP_URL") as refused:
        SmtpTarget.parse(url)
    assert message in str(refused.value)
    assert "s3cret" not in str(refused.value)  # the error ends up in logs: never the password
