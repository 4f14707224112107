"""Access review (システム利用権限設定情報の棚卸, seed 5-6): keep or revoke every user of the company."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Literal, cast

import msgspec

from kagi_permissions.domain.catalogue import REQUESTABLE, label
from kagi_shared.jst import jp_datetime
from kagi_shared.problems import Problem

Decision = Literal["pending", "keep", "revoke"]
DECISION_LABELS = {"pending": "未確認", "keep": "継続", "revoke": "抹消"}


class ReviewEntry(msgspec.Struct, kw_only=True):
    user_id: str
    user_key: str
    name_kanji: str = ""
    name_kana: str = ""
    contractor: str | None = None
    permissions: dict[str, str | None] = {}
    last_login_at: datetime | None = None
    decision: Decision = "pending"
    decided_at: datetime | None = None
    decided_by: str | None = None
    request_id: str | None = None


class Campaign(msgspec.Struct, kw_only=True):
    id: str
    company_id: str
    started_at: datetime
    started_by: str
    status: Literal["open", "complete"] = "open"
    entries: list[ReviewEntry] = []

    def entry(self, user_key: str) -> ReviewEntry | None:
        return next((e for e in self.entries if e.user_key == user_key), None)


def entry_of(grant: dict[str, object]) -> ReviewEntry:
    permissions = grant.get("permissions") or {}
    assert isinstance(permissions, dict)
    return ReviewEntry(user_id=str(grant["user_id"]), user_key=str(grant["_id"]),
                       name_kanji=str(grant.get("name_kanji") or ""), name_kana=str(grant.get("name_kana") or ""),
                       contractor=cast("str | None", grant.get("contractor") or None),
                       permissions={s: permissions.get(s) for s in REQUESTABLE},
                       last_login_at=cast("datetime | None", grant.get("last_login_at")))


def decide(campaign: Campaign, user_key: str, decision: Decision, who: str, now: datetime) -> ReviewEntry:
    if campaign.status != "open":
        raise Problem(409, "review.closed", "この棚卸は完了しています。")
    entry = campaign.entry(user_key)
    if entry is None:
        raise Problem(404, "review.user_not_found", "この棚卸の対象ではない利用者です。")
    if entry.decision != "pending":
        raise Problem(409, "review.already_decided",
                      f"この利用者は既に「{DECISION_LABELS[entry.decision]}」と判断済みです。")
    entry.decision = decision
    entry.decided_at = now
    entry.decided_by = who
    if all(e.decision != "pending" for e in campaign.entries):
        campaign.status = "complete"
    return entry


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(cell: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading ' (OWASP CSV injection);
    names and IDs come from people, and a report is opened by an admin in Excel."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def report_csv(campaign: Campaign) -> str:
    """The campaign report for download (Excel-friendly: UTF-8 with BOM, CRLF; no cell is a formula)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["利用者ID", "利用者名(漢字)", "利用者名(カナ)", "所属事業者", *REQUESTABLE, "最終ログイン",
                     "判断", "判断日時", "判断者", "抹消申請番号"])
    for e in campaign.entries:
        writer.writerow([inert(cell) for cell in (
            e.user_id, e.name_kanji, e.name_kana, e.contractor or "",
            *(label(s, e.permissions.get(s)) for s in REQUESTABLE),
            jp_datetime(e.last_login_at) if e.last_login_at else "未ログイン",
            DECISION_LABELS[e.decision], jp_datetime(e.decided_at) if e.decided_at else "",
            e.decided_by or "", e.request_id or "")])
    return out.getvalue()
