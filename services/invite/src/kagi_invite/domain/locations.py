"""Usage locations (ご使用場所) and per-location viewer keys (認証キー, TEPCO business; SPEC §2).

Pure rules: supply-point numbers, key verdicts, who may see what.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from kagi_invite.domain.limits import valid_until

SUPPLY_POINT_DIGITS = 22
_SEPARATORS = re.compile(r"[\s\-]+")

ViewerKeyStatus = Literal["pending", "redeemed", "revoked"]
ViewerKeyVerdict = Literal["ok", "expired", "redeemed", "revoked"]


class AlreadyViewer(Exception):
    """The account already views this location."""


class Location(msgspec.Struct, kw_only=True):
    id: str
    """The supply-point number (供給地点特定番号), 22 digits: unique per location."""
    owner_id: str
    customer_number: str
    name: str
    address: str
    contract: dict[str, str] = msgspec.field(default_factory=dict)
    statements: list[dict[str, Any]] = msgspec.field(default_factory=list)
    energy: list[dict[str, Any]] = msgspec.field(default_factory=list)
    version: int = 1
    updated_at: datetime


class ViewerKey(msgspec.Struct, kw_only=True):
    id: str
    owner_id: str
    location_id: str
    key_hash: str
    issued_at: datetime
    expires_at: datetime
    status: ViewerKeyStatus = "pending"
    owner_email: str = ""
    redeemed_by: str | None = None
    redeemed_at: datetime | None = None


class ViewerRight(msgspec.Struct, kw_only=True):
    owner_id: str
    location_id: str
    account_id: str
    login_id: str
    email: str
    key_id: str
    added_at: datetime


def supply_point_number(typed: str) -> str:
    """Digits only; people paste it grouped with hyphens or spaces (``0000-0000-00-…``)."""
    return _SEPARATORS.sub("", typed)


def supply_point_problem(typed: str) -> str | None:
    number = supply_point_number(typed)
    if not number.isascii() or not number.isdigit():
        return "供給地点特定番号は半角数字で入力してください。"
    if len(number) != SUPPLY_POINT_DIGITS:
        return f"供給地点特定番号は {SUPPLY_POINT_DIGITS} 桁です。"
    return None


def judge_viewer_key(key: ViewerKey, now: datetime) -> ViewerKeyVerdict:
    if key.status != "pending":
        return key.status
    return "expired" if now >= key.expires_at else "ok"


def can_view(owner_id: str, account_id: str, already: bool) -> Literal["ok", "own_location", "already_viewer"]:
    if owner_id == account_id:
        return "own_location"
    return "already_viewer" if already else "ok"


def newer(stored_version: int | None, incoming_version: int) -> bool:
    """Contract data is replayed and redelivered: the latest version wins, equal versions are replaced."""
    return stored_version is None or incoming_version >= stored_version


def page_bounds(page: int, per_page: int, max_per_page: int = 100) -> tuple[int, int]:
    """(skip, limit) for a 1-based page; out-of-range values are clamped rather than refused."""
    per_page = min(max(per_page, 1), max_per_page)
    page = max(page, 1)
    return (page - 1) * per_page, per_page


@dataclass(frozen=True)
class ViewerKeyPolicy:
    """TEPCO 閲覧者認証キー: a key an owner issues for one location is valid ``key_ttl_s`` (24 h), single use."""

    key_ttl_s: int = 86400

    def key_expires_at(self, issued_at: datetime) -> datetime:
        return valid_until(issued_at, self.key_ttl_s)
