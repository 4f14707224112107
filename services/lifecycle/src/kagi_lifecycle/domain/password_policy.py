"""Password rules of SPEC §4, two profiles. Pure: every refusal names the rule it broke.

``seed`` (default, the consignment guide 6-1): 8–32 characters of ASCII letters, digits and exactly
the seed's symbols (the seed prints ``¥`` for the backslash; ``?^{|}`` and spaces are refused);
must not contain the user ID or the local part of the registered email; must differ from the
current password; expires after 185 days.
``nist`` (NIST SP 800-63B style): 15–64 characters or more (up to 256), any characters, no
composition rules, no expiry, refused when on a blocklist of common passwords.
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Profile = Literal["seed", "nist"]

SEED_SYMBOLS = "!\"#$%&'()*+,-./:;<=>\\@[]_`~"
SEED_ALLOWED = frozenset(string.ascii_letters + string.digits + SEED_SYMBOLS)
SEED_MIN, SEED_MAX = 8, 32
NIST_MIN, NIST_MAX = 15, 256

# Common passwords of 15+ characters (the only ones the length rule lets through), lower-cased.
COMMON_PASSWORDS = frozenset({
    "123456789012345", "1234567890123456", "12345678901234567890", "123456789123456789",
    "qwertyuiopasdfgh", "qwertyuiopasdfghjkl", "qwertyuiopasdfghjklzxcvbnm", "1q2w3e4r5t6y7u8i",
    "passwordpassword", "password12345678", "password123456789", "passwordpassword1",
    "iloveyouiloveyou", "aaaaaaaaaaaaaaa", "000000000000000", "111111111111111",
    "abcdefghijklmnop", "abcdefghijklmnopqrstuvwxyz", "letmeinletmein1", "welcomewelcome1",
    "correcthorsebatterystaple", "trustno1trustno1", "adminadminadmin", "administrator123",
    "changemechangeme", "p@ssw0rdp@ssw0rd", "qazwsxedcrfvtgb", "zaq12wsxcde34rfv",
})


@dataclass(frozen=True)
class Violation:
    rule: str
    """Stable code, e.g. ``password.too_short``."""
    message: str
    """Japanese, for people."""


@dataclass(frozen=True)
class Context:
    login_id: str
    email: str
    same_as_current: bool = False
    """Whether the candidate verifies against the current hash (checked by the caller, off the event loop)."""


def check(password: str, profile: Profile, context: Context) -> list[Violation]:
    """Every rule ``password`` breaks under ``profile``; empty when it is acceptable."""
    return _seed(password, context) if profile == "seed" else _nist(password)


def _seed(password: str, context: Context) -> list[Violation]:
    out: list[Violation] = []
    if len(password) < SEED_MIN:
        out.append(Violation("password.too_short", f"{SEED_MIN} 文字以上で入力してください。"))
    if len(password) > SEED_MAX:
        out.append(Violation("password.too_long", f"{SEED_MAX} 文字以内で入力してください。"))
    bad = sorted({c for c in password if c not in SEED_ALLOWED})
    if bad:
        shown = " ".join("空白" if c == " " else c for c in bad[:10])
        out.append(Violation(
            "password.invalid_characters",
            f"使用できない文字が含まれています ({shown})。半角英数字と記号 {SEED_SYMBOLS} のみ使用できます。"))
    lowered = password.lower()
    login_id = context.login_id.strip().lower()
    if login_id and login_id in lowered:
        out.append(Violation("password.contains_login_id", "ユーザ ID を含むパスワードは使用できません。"))
    local = context.email.strip().lower().partition("@")[0]
    if local and local in lowered:
        out.append(Violation("password.contains_email_local_part",
                             "登録済みのメールアドレスのアカウント名を含むパスワードは使用できません。"))
    if context.same_as_current:
        out.append(Violation("password.same_as_current", "現在のパスワードと異なるパスワードを入力してください。"))
    return out


def _nist(password: str) -> list[Violation]:
    out: list[Violation] = []
    length = len(unicodedata.normalize("NFC", password))
    if length < NIST_MIN:
        out.append(Violation("password.too_short", f"{NIST_MIN} 文字以上で入力してください。"))
    if length > NIST_MAX:
        out.append(Violation("password.too_long", f"{NIST_MAX} 文字以内で入力してください。"))
    if password.lower() in COMMON_PASSWORDS:
        out.append(Violation("password.too_common", "よく使われているパスワードのため使用できません。"))
    return out


def expires_at(changed_at: datetime, profile: Profile, max_age_days: int) -> datetime | None:
    """When a password set at ``changed_at`` expires; None when the profile has no expiry."""
    if profile == "nist":
        return None
    return changed_at + timedelta(days=max_age_days)


def is_expired(changed_at: datetime, profile: Profile, max_age_days: int, now: datetime) -> bool:
    deadline = expires_at(changed_at, profile, max_age_days)
    return deadline is not None and now >= deadline


@dataclass(frozen=True)
class PasswordPolicy:
    """The password rules in force (SPEC §3/§4): the profile (``seed``: 8–32 characters of the seed's set, the
    ID not inside, 185-day expiry; ``nist``: 15+ characters, no expiry) and the seed profile's maximum age."""

    profile: Profile = "seed"
    max_age_days: int = 185

    def violations(self, password: str, context: Context) -> list[Violation]:
        return check(password, self.profile, context)

    def expired(self, changed_at: datetime, now: datetime) -> bool:
        return is_expired(changed_at, self.profile, self.max_age_days, now)
