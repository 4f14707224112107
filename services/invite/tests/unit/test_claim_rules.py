"""Contract claims: what counts as proof, and the main number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kagi_invite.domain.claims import (
    Claim,
    Proof,
    WaterContract,
    above_recommended,
    matches,
    mobile_problem,
    next_main,
    proof_problem,
)

NOW = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)
CONTRACT = WaterContract(id="W1000001", billing_number="12A4561", name="水道 太郎",
                         service_address="大阪府大阪市北区中之島1-3-20", phone="06-6458-1132", debit_last4="1234",
                         updated_at=NOW)


def proof(**changes: str | None) -> Proof:
    base: dict[str, str | None] = {"customer_number": "W1000001", "billing_number": "12A4561"}
    return Proof(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("extra", [
    {"phone": "0664581132"},
    {"phone": "06-6458-1132"},
    {"service_address": "大阪府大阪市北区中之島１－３－２０"},  # full-width, as people type it
    {"debit_last4": "1234"},
    {"phone": "0000000000", "debit_last4": "1234"},  # one right fact is enough
])
def test_numbers_plus_one_right_fact_match(extra: dict[str, str]) -> None:
    assert matches(CONTRACT, proof(**extra))
    assert matches(CONTRACT, proof(customer_number="w1000001", billing_number="12a4561", **extra))


@pytest.mark.parametrize("changes", [
    {"customer_number": "W1000002", "phone": "0664581132"},
    {"billing_number": "12A4562", "phone": "0664581132"},
    {"phone": "0664581133"},
    {"service_address": "大阪府大阪市北区中之島1-3-21"},
    {"debit_last4": "4321"},
    {"debit_last4": "234"},
    {"phone": "1132"},  # a fragment of the number is not the number
])
def test_any_wrong_part_fails_the_same_way(changes: dict[str, str]) -> None:
    assert not matches(CONTRACT, proof(**changes))


def test_unknown_contract_never_matches() -> None:
    assert not matches(None, proof(phone="0664581132"))


def test_proof_needs_both_numbers_and_one_fact() -> None:
    assert proof_problem(proof()) is not None
    assert proof_problem(proof(customer_number=" ", phone="0664581132")) is not None
    assert proof_problem(proof(debit_last4="1234")) is None


def test_oldest_remaining_number_becomes_main() -> None:
    claims = [Claim(account_id="a", customer_number=n, linked_at=NOW + timedelta(minutes=i), main=i == 0)
              for i, n in enumerate(["W1", "W2", "W3"])]
    assert next_main(claims, "W1") == "W2"
    assert next_main(claims[:1], "W1") is None


def test_warning_only_above_the_recommended_count() -> None:
    assert not above_recommended(20, 20)
    assert above_recommended(21, 20)


@pytest.mark.parametrize(("number", "ok"), [
    ("090-1234-5678", True), ("08012345678", True), ("070 1234 5678", True), ("０９０１２３４５６７８", True),
    ("03-1234-5678", False),  # a landline cannot receive SMS
    ("0901234567", False), ("090123456789", False), ("", False),
])
def test_sms_needs_a_mobile_number(number: str, ok: bool) -> None:
    assert (mobile_problem(number) is None) is ok
