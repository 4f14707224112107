"""Which answer an ``Idempotency-Key`` names, and which keys are refused."""

from __future__ import annotations

import uuid

import msgspec

from kagi_shared import idempotency


def test_a_claim_id_differs_by_caller_route_and_key() -> None:
    base = idempotency.claim_id("account:a", "POST", "/internal/things", "k")
    assert base == idempotency.claim_id("account:a", "POST", "/internal/things", "k")
    others = {idempotency.claim_id("account:b", "POST", "/internal/things", "k"),
              idempotency.claim_id("ip:192.0.2.1", "POST", "/internal/things", "k"),
              idempotency.claim_id("account:a", "POST", "/internal/other", "k"),
              idempotency.claim_id("account:a", "POST", "/internal/things", "k2")}
    assert base not in others and len(others) == 4
    assert idempotency.principal_of({b"x-kagi-account-id": b"a", b"x-kagi-client-ip": b"192.0.2.1"}) == "account:a"
    assert idempotency.principal_of({b"x-kagi-client-ip": b"192.0.2.1"}) == "ip:192.0.2.1"


def test_a_key_is_one_to_255_printable_ascii_characters() -> None:
    assert idempotency.key_problem("a") is None
    assert idempotency.key_problem("x" * 255) is None
    assert idempotency.key_problem(str(uuid.uuid4())) is None
    for bad in ("", "x" * 256, "with space", "キー", "tab\t"):
        assert idempotency.key_problem(bad), bad
    problem = idempotency.invalid_key("why")
    assert (problem.status, problem.code) == (400, "idempotency.key_invalid")
    assert msgspec.to_builtins(problem.errors) == [{"field": "Idempotency-Key", "reason": "why"}]
