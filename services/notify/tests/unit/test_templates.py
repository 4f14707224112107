"""Every template renders in Japanese with its sample data; a template with an undeclared variable cannot start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kagi_notify.adapters.template_files import TEMPLATE_DIR, read_catalogue, sender_addresses
from kagi_notify.domain.deliveries import address_problem, next_attempt
from kagi_notify.domain.templates import Catalogue, TemplateError

# Subjects of the seeds' notices, with the brand set to "Kagi". Every template must be listed here.
EXPECTED_SUBJECTS = {"step_up_code": "【Kagi】認証コード発行のお知らせ",
                     "request_status_changed": "【Kagi】システム利用権限申請の処理状況のお知らせ",
                     "user_registration_guide": "[Kagi] 認証情報登録手順のご案内",
                     "user_one_time_password": "[Kagi] 認証情報登録用ワンタイムパスワード",
                     "purged_id_revoke_needed": "【Kagi】長期未使用IDの自動抹消に伴う抹消申請のお願い",
                     "inactivity_warning_1": "[Kagi] 長期未使用 ID 通知メール (警告 1)",
                     "inactivity_warning_2": "[Kagi] 長期未使用 ID 通知メール (警告 2)",
                     "inactivity_lock": "[Kagi] 長期未使用 ID 通知メール (アカウントロック)",
                     "inactivity_purge": "[Kagi] 長期未使用 ID 通知メール (アカウント削除)",
                     "failed_login_lock": "[Kagi] アカウントロックのお知らせ",
                     "secret_question_lock": "[Kagi] アカウントロックのお知らせ (秘密の質問)",
                     "password_reset": "[Kagi] パスワード再設定のご案内",
                     "password_changed": "[Kagi] パスワード変更のお知らせ",
                     "secret_question_changed": "[Kagi] 秘密の質問変更のお知らせ",
                     "totp_enrolled": "[Kagi] 2段階認証登録のお知らせ",
                     "unlock_result": "[Kagi] ロック解除申請の結果のお知らせ",
                     "general_notice": "【Kagi】マイページからのお知らせ",
                     "admin_contact_confirm": "【Kagi 託送情報共有サイト】メールアドレスのご登録依頼",
                     "info_site_update": "【Kagi 託送情報共有サイト】掲載情報更新のお知らせ",
                     "invitation_confirm": "【Kagi】利用者追加のメールアドレス確認のお知らせ",
                     "co_user_added": "【Kagi】利用者追加完了のお知らせ",
                     "co_user_removed": "【Kagi】利用者削除のお知らせ",
                     "viewer_added": "【Kagi】閲覧者追加のお知らせ",
                     "viewer_removed": "【Kagi】閲覧者削除のお知らせ",
                     "registration_verify": "【Kagi】メールアドレス認証のお知らせ",
                     "registration_exists": "【Kagi】利用登録のお申し込みについて",
                     "withdrawal_completed": "【Kagi】退会手続き完了のお知らせ",
                     "contract_linked_elsewhere": "【Kagi】お客さま番号の登録についてのお知らせ"}
ALL = sorted(p.stem for p in TEMPLATE_DIR.glob("*/*.txt"))


@pytest.fixture
def catalogue() -> Catalogue:
    return read_catalogue("Kagi", "https://kagi.example.jp")


@pytest.mark.parametrize("name", ALL)
def test_every_template_renders_its_sample(catalogue: Catalogue, name: str) -> None:
    rendered = catalogue.render_sample(name)
    if catalogue.spec(name).channel == "mail":
        assert rendered.subject == EXPECTED_SUBJECTS[name]
    for value in catalogue.spec(name).sample.values():
        assert value in rendered.subject + rendered.body
    assert "{{" not in rendered.body


def test_step_up_mail_follows_the_seed(catalogue: Catalogue) -> None:
    body = catalogue.render("step_up_code", {"code": "ABCD2345EFGH", "expires_at": "2023年09月15日 14時59分まで"}).body
    assert "認証コード: ABCD2345EFGH" in body
    assert "送信専用のメールアドレスから配信しております" in body


def test_missing_variable_is_refused_before_sending(catalogue: Catalogue) -> None:
    with pytest.raises(TemplateError, match="missing variables: \\['expires_at'\\]"):
        catalogue.render("step_up_code", {"code": "X"})
    with pytest.raises(TemplateError, match="unknown template"):
        catalogue.render("no_such_template", {})


def edited_copy(tmp_path: Path, template: str, edit: Callable[[str], str]) -> None:
    """A template directory in ``tmp_path`` holding only the shipped ``template``, changed by ``edit``."""
    (tmp_path / template).parent.mkdir()
    source = (TEMPLATE_DIR / template).read_text(encoding="utf-8")
    (tmp_path / template).write_text(edit(source), encoding="utf-8")


def test_catalogue_refuses_to_load_a_template_using_an_undeclared_variable(tmp_path: Path) -> None:
    edited_copy(tmp_path, "mail/step_up_code.txt", lambda source: source + "{{ account_nmae }}\n")
    with pytest.raises(TemplateError, match="undeclared variables: \\['account_nmae'\\]"):
        read_catalogue("Kagi", "https://kagi.example.jp", tmp_path)


def test_catalogue_refuses_a_template_without_samples_for_its_variables(tmp_path: Path) -> None:
    edited_copy(tmp_path, "mail/step_up_code.txt", lambda source: source.replace("  code: ABCD2345EFGH\n", ""))
    with pytest.raises(TemplateError, match="sample must give exactly the declared variables"):
        read_catalogue("Kagi", "https://kagi.example.jp", tmp_path)


@pytest.mark.parametrize(("address", "ok"), [
    ("owner@example.jp", True),
    ("not-an-address", False),
    ("a b@example.jp", False),
    ("owner@localhost", False),
    ("Owner <owner@example.jp>", False),
])
def test_recipient_addresses_are_checked(address: str, ok: bool) -> None:
    assert (address_problem(address) is None) is ok


def test_backoff_doubles_and_is_capped() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    delays = [(next_attempt(now, n, 2.0, cap_s=30) - now).total_seconds() for n in range(1, 7)]
    assert delays == [2, 4, 8, 16, 30, 30]


SENDERS = {"default": "no-reply@kagi.example.jp", "auth": "noreply@admin.auth.kagi.example.jp",
           "enrolment": "anshinlogin@auth.kagi.example.jp"}


def test_templates_with_a_sender_of_their_own_render_it_the_others_keep_the_default() -> None:
    catalogue = read_catalogue("Kagi", "https://kagi.example.jp", senders=SENDERS)
    own = {name: catalogue.render_sample(name).sender for name in ALL if catalogue.spec(name).sender}
    # Seed 5-7: the inactivity notices come from the authentication system; 5-1 ⑤: the enrolment mails.
    assert own == {**dict.fromkeys(["inactivity_warning_1", "inactivity_warning_2", "inactivity_lock",
                                    "inactivity_purge"], "noreply@admin.auth.kagi.example.jp"),
                   "user_registration_guide": "anshinlogin@auth.kagi.example.jp",
                   "user_one_time_password": "anshinlogin@auth.kagi.example.jp"}
    assert catalogue.render_sample("step_up_code").sender is None  # the channel's default (settings.smtp.sender)


def test_the_from_header_is_the_templates_sender_else_the_default() -> None:
    from kagi_notify.adapters.channels import MailChannel
    from kagi_shared.settings import load_settings

    settings = load_settings({"KAGI_SMTP_SENDER": "info@brand.example.jp",
                              "KAGI_SMTP_AUTH_SENDER": "noreply@admin.auth.brand.example.jp"})
    catalogue = read_catalogue("Kagi", "https://kagi.example.jp", senders=sender_addresses(settings.smtp))
    channel = MailChannel(None, settings)  # type: ignore[arg-type] - only builds the message here
    lock = channel.message_for("d-1", "user@example.jp", "lifecycle", catalogue.render_sample("inactivity_lock"))
    code = channel.message_for("d-2", "user@example.jp", "security", catalogue.render_sample("step_up_code"))
    assert lock["From"] == "noreply@admin.auth.brand.example.jp"
    assert lock["Message-ID"] == "<d-1@admin.auth.brand.example.jp>"
    assert code["From"] == "info@brand.example.jp"


def test_catalogue_refuses_a_template_naming_an_unknown_sender(tmp_path: Path) -> None:
    edited_copy(tmp_path, "mail/inactivity_lock.txt",
                lambda source: source.replace("sender: auth\n", "sender: billing\n"))
    with pytest.raises(TemplateError, match="inactivity_lock names an unknown sender 'billing'"):
        read_catalogue("Kagi", "https://kagi.example.jp", tmp_path, senders=SENDERS)
    # The shipped templates need the senders the settings define: a deployment without them cannot start.
    with pytest.raises(TemplateError, match="unknown sender 'auth'"):
        read_catalogue("Kagi", "https://kagi.example.jp", senders={"default": "no-reply@kagi.example.jp"})


def test_an_sms_template_has_no_sender(tmp_path: Path) -> None:
    edited_copy(tmp_path, "sms/sms_verification.txt",
                lambda source: source.replace("---\n", "---\nsender: auth\n", 1))
    with pytest.raises(TemplateError, match="only mail templates have a sender"):
        read_catalogue("Kagi", "https://kagi.example.jp", tmp_path, senders=SENDERS)
