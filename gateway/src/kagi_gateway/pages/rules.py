"""The password rules as a person reads them beside the field (the rules themselves are lifecycle's
``domain/password_policy.py``, which judges every password and names each broken rule)."""

from __future__ import annotations

from kagi_shared.settings import Settings

_RULES = {
    "seed": ["8〜32文字", "半角英数字と記号 !\"#$%&'()*+,-./:;<=>\\@[]_`~ が使用できます",
             "ユーザIDやメールアドレスのアカウント名を含まないこと"],
    "nist": ["15文字以上", "よく使われているパスワードは使用できません"],
}


def password_rules(settings: Settings) -> list[str]:
    return _RULES[settings.lifecycle.password_profile]
