"""Password rules of both profiles: each refusal names its rule; boundaries of length and characters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kagi_lifecycle.domain.password_policy import SEED_SYMBOLS, Context, check, expires_at, is_expired

CTX = Context(login_id="taro.yamada@example.jp", email="taro.yamada@example.jp")


def rules(password: str, profile: str = "seed", context: Context = CTX) -> list[str]:
    return [v.rule for v in check(password, profile, context)]  # type: ignore[arg-type]


@pytest.mark.parametrize(("password", "expected"), [
    ("Abcdef1!", []),                          # 8: the shortest allowed
    ("Abcdef1", ["password.too_short"]),       # 7
    ("A" * 32, []),                            # 32: the longest allowed
    ("A" * 33, ["password.too_long"]),
    ("", ["password.too_short"]),
])
def test_seed_length(password: str, expected: list[str]) -> None:
    assert rules(password) == expected


def test_seed_accepts_exactly_the_seeds_symbols() -> None:
    assert rules("Aa1" + SEED_SYMBOLS[:29]) == []
    assert rules("Aa1" + SEED_SYMBOLS[-5:] + "xyz") == []
    assert "\\" in SEED_SYMBOLS and "¥" not in SEED_SYMBOLS  # the seed prints ¥ for the backslash


@pytest.mark.parametrize("char", ["?", "^", "{", "|", "}", " ", "¥", "あ", "Ａ", "\t"])
def test_seed_refuses_other_characters_and_names_them(char: str) -> None:
    violations = check(f"Abcdefg1{char}", "seed", CTX)
    assert [v.rule for v in violations] == ["password.invalid_characters"]
    shown = "空白" if char == " " else char
    assert shown in violations[0].message


def test_seed_refuses_the_user_id_and_the_email_local_part_in_any_case() -> None:
    assert rules("xTARO.YAMADA@EXAMPLE.JPx") == ["password.contains_login_id", "password.contains_email_local_part"]
    assert rules("Pw-taro.yamada-1") == ["password.contains_email_local_part"]
    other = Context(login_id="u1@example.jp", email="hanako@example.org")
    assert rules("Hanako-2026!", context=other) == ["password.contains_email_local_part"]


def test_seed_refuses_the_current_password() -> None:
    same = Context(login_id=CTX.login_id, email=CTX.email, same_as_current=True)
    assert rules("Abcdef1!", context=same) == ["password.same_as_current"]


def test_every_broken_rule_is_listed_with_japanese_text() -> None:
    violations = check("taro.yamada ?", "seed", CTX)
    assert [v.rule for v in violations] == ["password.invalid_characters", "password.contains_email_local_part"]
    assert all(v.message.endswith("。") for v in violations)


@pytest.mark.parametrize(("password", "expected"), [
    ("correct horse battery staple", []),       # spaces and any character allowed
    ("パスワードはとても長い日本語の文です", []),
    ("kagi-long-pass", ["password.too_short"]),   # 14
    ("kagi-long-pass1", []),                     # 15
    ("a" * 15, ["password.too_common"]),
    ("a" * 64, []),
    ("a" * 256, []),
    ("a" * 257, ["password.too_long"]),
    ("PasswordPassword", ["password.too_common"]),
    ("CorrectHorseBatteryStaple", ["password.too_common"]),
])
def test_nist_profile(password: str, expected: list[str]) -> None:
    assert rules(password, "nist") == expected


def test_nist_has_no_composition_rules_and_no_expiry() -> None:
    assert rules("taro.yamada-has-a-long-pass", "nist") == []
    changed = datetime(2026, 1, 1, tzinfo=UTC)
    assert expires_at(changed, "nist", 185) is None
    assert not is_expired(changed, "nist", 185, changed + timedelta(days=4000))


def test_seed_passwords_expire_after_185_days() -> None:
    changed = datetime(2026, 1, 1, tzinfo=UTC)
    assert not is_expired(changed, "seed", 185, changed + timedelta(days=185) - timedelta(seconds=1))
    assert is_expired(changed, "seed", 185, changed + timedelta(days=185))
