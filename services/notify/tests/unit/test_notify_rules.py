"""Pure rules of notify: preferences, admin contact links, SMS numbers, mail headers, the catalogue command."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from kagi_cli.main import main as kagi
from kagi_cli.notify import cmd_sms
from kagi_notify.adapters.mailer import build_message
from kagi_notify.adapters.sms import FileSmsSender, SmsMessage, read_sms
from kagi_notify.adapters.template_files import read_catalogue
from kagi_notify.domain import admin_contacts as ac
from kagi_notify.domain.deliveries import phone_problem, recipient_problem
from kagi_notify.domain.preferences import MANDATORY_CATEGORIES, OPT_OUT_NOTICE, Preferences, should_send
from kagi_notify.domain.templates import Rendered
from kagi_shared.settings import get_settings

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize("category", [*MANDATORY_CATEGORIES, "admin"])
def test_mandatory_categories_are_sent_even_to_those_who_opted_out(category: str) -> None:
    assert should_send(category, Preferences(account_id="a", general=False))


def test_general_notices_follow_the_switch() -> None:
    assert should_send("general", None)  # nobody chose anything yet: on
    assert should_send("general", Preferences(account_id="a", general=True))
    assert not should_send("general", Preferences(account_id="a", general=False))


def test_the_opt_out_notice_says_disaster_notices_stop_too() -> None:
    assert "災害発生時の断水情報等の重要なお知らせについても、配信が停止されます" in OPT_OUT_NOTICE
    assert "使用水量・料金のお知らせ" in OPT_OUT_NOTICE and "配信を停止することができません" in OPT_OUT_NOTICE


def contact(**changes: object) -> ac.AdminContact:
    base = ac.AdminContact(id="c", email="admin@example.jp", created_at=NOW, token_hash="h",  # noqa: S106
                           link_expires_at=ac.link_expiry(NOW, 7))
    for k, v in changes.items():
        setattr(base, k, v)
    return base


def test_a_link_is_good_for_seven_days_then_expires() -> None:
    assert ac.link_expiry(NOW, 7) - NOW == timedelta(days=7)
    assert ac.judge(contact(), NOW + timedelta(days=6, hours=23)) == "ok"
    assert ac.judge(contact(), NOW + timedelta(days=7)) == "expired"


def test_a_used_or_unknown_link_is_invalid() -> None:
    assert ac.judge(None, NOW) == "invalid"
    assert ac.judge(contact(status="active", link_expires_at=None), NOW) == "invalid"


def test_tokens_are_long_random_and_stored_only_as_keyed_hashes() -> None:
    a, b = ac.new_token(), ac.new_token()
    assert a != b and len(a) >= 43
    assert ac.hash_token(a, "pepper") == ac.hash_token(a, "pepper")
    assert ac.hash_token(a, "pepper") != ac.hash_token(a, "other")
    assert a not in ac.hash_token(a, "pepper")
    assert ac.confirm_url("https://kagi.example.jp/", a) == f"https://kagi.example.jp/admin-contacts/confirm?token={a}"


@pytest.mark.parametrize(("number", "ok"), [
    ("090-1234-5678", True),
    ("+819012345678", True),
    ("09012345678", True),
    ("12345", False),
    ("090-1234-567a", False),
    ("owner@example.jp", False),
])
def test_sms_numbers_are_checked(number: str, ok: bool) -> None:
    assert (phone_problem(number) is None) is ok
    assert (recipient_problem("sms", number) is None) is ok


def test_sms_template_has_no_subject_and_carries_the_code() -> None:
    catalogue = read_catalogue("Kagi", "https://kagi.example.jp")
    spec = catalogue.spec("sms_verification")
    assert spec.channel == "sms" and spec.subject == "" and spec.secret == {"code"}
    variables = {"code": "ABCD2345EFGH", "expires_at": "2026年11月22日 12時00分まで"}
    body = catalogue.render("sms_verification", variables).body
    assert body.startswith("【Kagi】認証コード: ABCD2345EFGH\n")
    assert "有効期限 2026年11月22日 12時00分まで" in body


def test_admin_and_site_notice_templates_follow_seed_7_3() -> None:
    catalogue = read_catalogue("Kagi", "https://kagi.example.jp")
    confirm = catalogue.render_sample("admin_contact_confirm").body
    assert "認証期限は送信日から7日以内です" in confirm
    assert catalogue.spec("admin_contact_confirm").secret == {"confirm_url"}
    update = catalogue.render_sample("info_site_update").body
    assert "掲載日: 2019/09/27" in update and "クライアント証明書導入済のパソコン" in update


def test_headers_real_mailers_expect() -> None:
    rendered = Rendered(subject="件名", body="本文\n")
    general = build_message(delivery_id="d-1", sender="no-reply@kagi.example.jp", recipient="a@example.jp",
                            rendered=rendered, when_rfc2822="Sun, 22 Nov 2026 03:00:00 +0000",
                            unsubscribe_url="https://kagi.example.jp/settings/notifications")
    assert general["Auto-Submitted"] == "auto-generated"
    assert general["List-Unsubscribe"] == "<https://kagi.example.jp/settings/notifications>"
    again = build_message(delivery_id="d-1", sender="x@kagi.example.jp", recipient="a@example.jp", rendered=rendered,
                          when_rfc2822="Sun, 22 Nov 2026 03:00:05 +0000", unsubscribe_url=None)
    assert again["Message-ID"] == general["Message-ID"]  # a retry keeps the id: receivers can dedupe
    assert again["List-Unsubscribe"] is None


def test_cli_lists_every_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert kagi(["notify", "templates"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "CHANNEL", "CATEGORY", "SUBJECT"]
    names = {line.split()[0] for line in lines[1:]}
    assert set(read_catalogue("Kagi", "https://kagi.example.jp").specs) == names
    sms = next(line for line in lines if line.startswith("sms_verification"))
    assert sms.split()[1:] == ["sms", "security", "-"]


def test_cli_renders_a_template_with_its_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert kagi(["notify", "render", "step_up_code", "--sample"]) == 0
    out = capsys.readouterr().out
    assert "Subject: 【" in out and "認証コード発行のお知らせ" in out
    assert "認証コード: ABCD2345EFGH" in out
    assert f"From: {get_settings().smtp.sender}" in out


def test_cli_shows_a_templates_own_sender(capsys: pytest.CaptureFixture[str]) -> None:
    assert kagi(["notify", "render", "inactivity_warning_1", "--sample"]) == 0
    assert f"From: {get_settings().smtp.auth_sender}" in capsys.readouterr().out


def test_cli_refuses_an_unknown_template_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert kagi(["notify", "render", "no_such_notice", "--sample"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["kagi: unknown template 'no_such_notice' (see 'kagi notify templates')"]


def test_a_line_break_in_a_header_is_refused_not_sent() -> None:
    with pytest.raises(ValueError, match="line break in the Subject header"):
        build_message(delivery_id="d", sender="no-reply@kagi.example.jp", recipient="a@example.jp",
                      rendered=Rendered(subject="件名\nBcc: x@example.jp", body="本文\n"),
                      when_rfc2822="Sun, 22 Nov 2026 03:00:00 +0000", unsubscribe_url=None)


async def test_cli_lists_the_sms_the_file_sender_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = get_settings()
    local = msgspec.structs.replace(settings, notify=msgspec.structs.replace(settings.notify, sms_dir=str(tmp_path)))
    assert cmd_sms(argparse.Namespace(to=None, last=0), local) == 0
    assert capsys.readouterr().out == f"no SMS in {tmp_path}\n"
    sender = FileSmsSender(tmp_path)
    for i, to in enumerate(["090-1111-2222", "090-3333-4444"]):
        await sender.send(SmsMessage(delivery_id=f"d{i}", to=to, body="【Kagi】認証コード: X\n有効期限 Y",
                                     sender="Kagi", created_at=NOW + timedelta(seconds=i)))
    assert [m.to for m in read_sms(tmp_path)] == ["090-1111-2222", "090-3333-4444"]
    assert cmd_sms(argparse.Namespace(to="3333", last=0), local) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert "090-3333-4444" in line and "【Kagi】認証コード: X / 有効期限 Y" in line
