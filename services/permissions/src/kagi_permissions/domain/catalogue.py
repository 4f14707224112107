"""Target systems, their permission codes and the seed's function matrices (5-4, 5-5), as data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

System = Literal["TAXIS", "JOHS", "JUJU", "LOACUS", "INFOSITE", "PMS"]
CompanyRole = Literal["gas_retailer", "consignment_requester", "manufacturer"]

REQUESTABLE: tuple[str, ...] = ("TAXIS", "JOHS", "JUJU", "LOACUS")
ALL_SYSTEMS: tuple[str, ...] = (*REQUESTABLE, "INFOSITE", "PMS")
YES = "yes"

COMPANY_ROLE_LABELS: dict[str, str] = {
    "gas_retailer": "ガス小売事業者",
    "consignment_requester": "託送供給依頼者",
    "manufacturer": "製造事業者",
}


@dataclass(frozen=True)
class Code:
    code: str
    label: str
    requires_role: str | None = None


@dataclass(frozen=True)
class TargetSystem:
    key: str
    name: str
    codes: tuple[Code, ...]
    requestable: bool = True
    note: str = ""
    retired: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Retired code → (successor, reason)."""

    def code(self, value: str) -> Code | None:
        return next((c for c in self.codes if c.code == value), None)

    @property
    def topic_suffix(self) -> str:
        return self.key.lower()


SYSTEMS: dict[str, TargetSystem] = {
    "TAXIS": TargetSystem(
        "TAXIS", "東京ガスネットワーク託送システム",
        (Code("1010", "更新権限なし"), Code("1011", "更新権限あり"), Code("1012", "更新権限あり(業務限定あり)")),
        retired={"1110": ("1011", "「1110:委託先事業者」は2022年1月24日に廃止されました。"
                                  "「1011:更新権限あり」を申請してください。")},
    ),
    "JOHS": TargetSystem("JOHS", "東京ガスネットワーク託送情報開示システム", (Code("J1010", "権限あり"),)),
    "JUJU": TargetSystem("JUJU", "東京ガスネットワーク消費機器保安情報授受システム", (Code(YES, "あり"),),
                         note="1事業者あたり5名以内"),
    "LOACUS": TargetSystem(
        "LOACUS", "東京ガスネットワーク託送ロードカーブシステム",
        (Code("02010", "託送供給依頼者(更新権限)", "consignment_requester"),
         Code("02011", "託送供給依頼者(参照権限)", "consignment_requester"),
         Code("03010", "製造事業者", "manufacturer")),
    ),
    "INFOSITE": TargetSystem("INFOSITE", "託送情報共有サイト", (Code(YES, "あり"),), requestable=False,
                             note="いずれかのシステムの利用権限を持つ利用者に自動で付与"),
    "PMS": TargetSystem("PMS", "システム利用権限管理システム", (Code(YES, "あり"),), requestable=False,
                        note="システム窓口責任者に当社が付与(申請による入力・変更は不可)"),
}

# 5-4 TAXIS 業務利用権限: function → codes that may use it (1110 kept for the record, retired).
TAXIS_MATRIX: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("託送契約管理", "申し込み情報報告", ("1011", "1012", "1110")),
    ("託送契約管理", "申し込み情報の検索・照会", ("1010", "1011", "1012", "1110")),
    ("託送契約管理", "解約取次情報の検索・照会", ("1010", "1011", "1012", "1110")),
    ("託送契約管理", "解約可否の回答報告", ("1011", "1012", "1110")),
    ("託送契約管理", "マッチング処理状況の照会", ("1010", "1011", "1012")),
    ("託送契約管理", "契約情報の検索・照会", ("1010", "1011", "1012", "1110")),
    ("検針", "検針結果の照会・ダウンロード", ("1010", "1011")),
    ("料金計算・請求", "請求情報(託送供給料金、精算額)の照会", ("1010", "1011")),
    ("その他", "アラート情報の検索・照会", ("1010", "1011", "1012")),
    ("その他", "アラート情報の消し込み", ("1011", "1012")),
)

# 5-5 LOACUS 業務利用権限: screen id, screen, codes that may use it.
LOACUS_MATRIX: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("GLA01", "注入計画日量照会", ("02010", "02011")),
    ("GLA02", "払出計画登録・照会", ("02010", "02011")),
    ("GLA07", "注入指示(繰越調整指示込)照会", ("02010", "02011", "03010")),
    ("GLB01", "注入指示-実績-調整指令照会", ("02010", "02011", "03010")),
    ("GLB02", "注入指示-実績-調整指令ダウンロード", ("02010", "02011", "03010")),
    ("GLB05", "調整指令照会", ("03010",)),
    ("GLG01", "卸連結点卸注入計画登録・照会", ("03010",)),
    ("GLG02", "卸連結点卸調整指令登録", ("03010",)),
    ("GLG03", "卸連結点卸実績照会", ("03010",)),
)
LOACUS_NOTES = {"GLA02": {"02010": "登録可", "02011": "登録不可"}}


def label(system: str, value: str | None) -> str:
    """``1011:更新権限あり`` for people; ``なし`` for no permission."""
    if value is None:
        return "なし"
    code = SYSTEMS[system].code(value)
    if code is None:
        return value
    return code.label if value == YES else f"{value}:{code.label}"


def catalogue_data() -> dict[str, object]:
    """The catalogue as JSON-ready data (camelCase keys)."""
    return {
        "systems": [
            {"key": s.key, "name": s.name, "requestable": s.requestable, "note": s.note,
             "topic": f"permissions.grants.{s.topic_suffix}",
             "codes": [{"code": c.code, "label": c.label, "requiresRole": c.requires_role} for c in s.codes],
             "retired": [{"code": old, "successor": new, "reason": reason}
                         for old, (new, reason) in s.retired.items()]}
            for s in SYSTEMS.values()
        ],
        "companyRoles": [{"key": k, "label": v} for k, v in COMPANY_ROLE_LABELS.items()],
        "taxisMatrix": [{"area": a, "function": f, "codes": list(c)} for a, f, c in TAXIS_MATRIX],
        "loacusMatrix": [{"screen": s, "function": f, "codes": list(c), "notes": LOACUS_NOTES.get(s, {})}
                         for s, f, c in LOACUS_MATRIX],
    }
