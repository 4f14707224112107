"""Notification preferences: only general notices (全体通知) can be switched off. Pure.

The water MyPage FAQ (seed, Q38) is the source of the rule and of the warning text: switching
general notices off stops disaster notices (断水情報等) too, while usage and fee notices cannot be
stopped. Security, lifecycle and invitation notices are mandatory as well (SPEC §5).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

OPTIONAL_CATEGORIES = frozenset({"general"})
MANDATORY_CATEGORIES = ("usage", "security", "lifecycle", "invitation")

# Seed water-mypage-faq.txt, Q38, adapted from the settings screen to this API.
OPT_OUT_NOTICE = (
    "「全体通知を受け取る」をオフにして配信を停止した場合、災害発生時の断水情報等の重要なお知らせについても、"
    "配信が停止されますのでご注意ください。"
    "なお、使用水量・料金のお知らせ、セキュリティ、アカウントの状態、招待に関するお知らせについては、"
    "配信を停止することができません。"
)
SKIP_REASON = "recipient switched off general notices (全体通知)"


class Preferences(msgspec.Struct, kw_only=True):
    account_id: str
    general: bool = True
    """全体通知を受け取る: general notices, disaster notices included."""
    email: str | None = None
    updated_at: datetime | None = None


def should_send(category: str, preferences: Preferences | None) -> bool:
    """Mandatory and admin categories always go out; ``general`` only while the recipient keeps it on."""
    if category not in OPTIONAL_CATEGORIES or preferences is None:
        return True
    return preferences.general
