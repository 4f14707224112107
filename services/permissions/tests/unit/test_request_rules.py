"""Input rules and the status display of permission requests (seed 5-1 to 5-5), as pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kagi_permissions.domain import requests as rules
from kagi_permissions.domain.catalogue import SYSTEMS, catalogue_data, label
from kagi_permissions.domain.companies import company_errors
from kagi_shared.problems import Problem

REQUESTER = ["gas_retailer", "consignment_requester"]


@pytest.mark.parametrize("user_id", [
    "takuso_taro@abc-gas.co.jp", "a.b-c~d$e&f'g`h^i=j@example.jp", "X@sub.example-1.jp",
])
def test_ids_the_seed_allows(user_id: str) -> None:
    assert rules.user_id_reasons(user_id) == []


@pytest.mark.parametrize(("user_id", "reason"), [
    ("taro+tag@example.jp", "@よりも前"),
    ("taro#1@example.jp", "@よりも前"),
    ("たろう@example.jp", "@よりも前"),
    ("taro@exa_mple.jp", "@よりも後"),
    ("taro@localhost", "@よりも後"),
    ("taro.example.jp", "メールアドレスの形式"),
    ("@example.jp", "メールアドレスの形式"),
])
def test_ids_with_forbidden_characters_are_refused_with_the_reason(user_id: str, reason: str) -> None:
    reasons = rules.user_id_reasons(user_id)
    assert reasons and reason in reasons[0]


def test_ids_differing_only_in_case_are_the_same_id() -> None:
    assert rules.user_key("Takuso_Taro@abc-gas.co.jp") == rules.user_key("takuso_taro@ABC-gas.co.jp")


def errors_of(after: dict[str, str | None], roles: list[str] = REQUESTER, pms: bool = False,
              infosite: bool = False) -> dict[str, str]:
    return {e.field: e.reason for e in rules.permission_errors(rules.normalise_after(after), roles, pms, infosite)}


def test_valid_codes_pass() -> None:
    assert errors_of({"TAXIS": "1012", "JOHS": "J1010", "JUJU": "yes", "LOACUS": "02011"}) == {}


def test_retired_1110_is_refused_naming_its_successor() -> None:
    reason = errors_of({"TAXIS": "1110"})["permissions.TAXIS"]
    assert "廃止" in reason and "1011" in reason


def test_unknown_code_and_code_of_another_system() -> None:
    assert "1010、1011、1012" in errors_of({"TAXIS": "9999"})["permissions.TAXIS"]
    assert "J1010 は JOHS の権限です" in errors_of({"TAXIS": "J1010"})["permissions.TAXIS"]


def test_loacus_codes_need_the_matching_company_role() -> None:
    assert "託送供給依頼者" in errors_of({"LOACUS": "02010"}, roles=["gas_retailer"])["permissions.LOACUS"]
    assert "製造事業者" in errors_of({"LOACUS": "03010"}, roles=REQUESTER)["permissions.LOACUS"]
    assert errors_of({"LOACUS": "03010"}, roles=["manufacturer"]) == {}


def test_permission_management_and_info_sharing_are_never_requested() -> None:
    errors = errors_of({"TAXIS": "1010"}, pms=True, infosite=True)
    assert set(errors) == {"permissions.PMS", "permissions.INFOSITE"}


def test_new_request_plans_batch_work_and_info_sharing_automatically() -> None:
    systems = rules.plan("new", {}, {"TAXIS": "1011", "JUJU": "yes"}, date(2026, 5, 1))
    assert [(s.system, s.after, s.timing) for s in systems] == [
        ("TAXIS", "1011", "batch"), ("JUJU", "yes", "batch"), ("INFOSITE", "yes", "batch")]
    assert rules.initial_status("new", systems) == "submitted"


def test_change_of_taxis_only_is_immediate_and_needs_no_acceptance() -> None:
    systems = rules.plan("change", {"TAXIS": "1010", "JOHS": "J1010"}, {"TAXIS": "1011", "JOHS": "J1010"},
                         date(2026, 5, 1))
    assert [(s.system, s.before, s.after, s.timing, s.effective_on) for s in systems] == [
        ("TAXIS", "1010", "1011", "immediate", date(2026, 5, 1))]
    assert rules.initial_status("change", systems) == "in_progress"


def test_change_adding_juju_follows_the_batch_and_is_accepted_by_the_system() -> None:
    systems = rules.plan("change", {"TAXIS": "1010"}, {"TAXIS": "1010", "JUJU": "yes"}, date(2026, 5, 1))
    assert [(s.system, s.timing) for s in systems] == [("JUJU", "batch")]
    assert rules.initial_status("change", systems) == "accepted"  # seed 5-2: no operator acceptance step


def test_revoke_removes_everything_with_the_seed_timing() -> None:
    systems = rules.plan("revoke", {"TAXIS": "1010", "LOACUS": "02011"}, {}, date(2026, 12, 31))
    assert [(s.system, s.timing, s.effective_on) for s in systems] == [
        ("TAXIS", "immediate", date(2027, 1, 1)), ("LOACUS", "manual", None), ("INFOSITE", "immediate",
                                                                                date(2027, 1, 1))]


def request(systems: list[rules.SystemStatus], status: rules.Status = "in_progress") -> rules.PermissionRequest:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    return rules.PermissionRequest(id="r1", company_id="c1", kind="new", user_id="u@example.jp",
                                   user_key="u@example.jp", name_kanji="山田", name_kana="ヤマダ",
                                   filed_by="a@example.jp", status=status, submitted_at=now,
                                   submitted_on=now.date(), systems=systems)


def test_status_display_follows_the_seed_pattern_table() -> None:
    # Pattern 5 of seed 5-1 ⑦: TAXIS, JOHS, JUJU requested; TAXIS/JOHS done → 処理中 済 済 未済 (不要)
    systems = rules.plan("new", {}, {"TAXIS": "1011", "JOHS": "J1010", "JUJU": "yes"}, date(2026, 5, 1))
    r = request(systems)
    for s in r.systems:
        if s.system in ("TAXIS", "JOHS", "INFOSITE"):
            s.state = "applied"
    shown = rules.display(r)
    assert [shown[k] for k in ("progress", "TAXIS", "JOHS", "JUJU", "LOACUS")] == [
        "処理中", "済", "済", "未済", "(不要)"]
    assert rules.settle(r) is False
    r.system("JUJU").state = "applied"  # type: ignore[union-attr]
    assert rules.settle(r) is True
    assert rules.display(r)["progress"] == "処理完了"


def test_accept_and_cancel_transitions() -> None:
    r = request([], status="submitted")
    rules.cancel(r, "IDの誤り")
    with pytest.raises(Problem) as refused:
        rules.accept(r, date(2026, 5, 7), date(2026, 5, 18))
    assert refused.value.code == "request.not_submitted" and refused.value.status == 409
    with pytest.raises(Problem):
        rules.cancel(r, "again")


def test_catalogue_is_data_with_the_seed_matrices() -> None:
    data = catalogue_data()
    systems = {s["key"]: s for s in data["systems"]}  # type: ignore[index, union-attr]
    assert set(systems) == {"TAXIS", "JOHS", "JUJU", "LOACUS", "INFOSITE", "PMS"}
    assert systems["PMS"]["requestable"] is False
    assert systems["TAXIS"]["retired"] == [{"code": "1110", "successor": "1011",
                                            "reason": SYSTEMS["TAXIS"].retired["1110"][1]}]
    glb05 = next(row for row in data["loacusMatrix"] if row["screen"] == "GLB05")  # type: ignore[union-attr]
    assert glb05["codes"] == ["03010"]
    meter = next(row for row in data["taxisMatrix"] if row["function"].startswith("検針"))  # type: ignore[union-attr]
    assert meter["codes"] == ["1010", "1011"]
    assert label("TAXIS", "1012") == "1012:更新権限あり(業務限定あり)"
    assert label("JUJU", "yes") == "あり" and label("JOHS", None) == "なし"


def test_company_rules() -> None:
    from kagi_permissions.domain.companies import Admin

    errors = {e.field for e in company_errors(
        ["gas_retailer", "electricity"], ["A社", "A社"],
        [("primaryAdmin", Admin(name="a", email="admin@x.example.jp")),
         ("secondaryAdmin", Admin(name="b", email="ADMIN@x.example.jp"))],
        ["1.1.1.1", "10.0.0.1", "198.51.100.0/24", "8.8.8.8"])}
    assert errors == {"roles[1]", "contractors", "secondaryAdmin.email", "ipAllowlist[1]", "ipAllowlist[2]"}
