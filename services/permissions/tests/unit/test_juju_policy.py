"""SPEC §3: at most 5 JUJU users per company; a 6th needs the operator's override (the company's own limit)."""

from __future__ import annotations

from kagi_permissions.domain.requests import JujuPolicy


def test_a_sixth_user_is_refused_and_the_five_keep_theirs() -> None:
    policy = JujuPolicy(max_users=5)
    five = {f"user{n}@partner.example.jp" for n in range(5)}
    assert policy.refuses("new@partner.example.jp", five, None)
    assert not policy.refuses("user0@partner.example.jp", five, None)  # already counted: a change, not a 6th
    assert not policy.refuses("new@partner.example.jp", set(list(five)[:4]), None)


def test_the_operator_s_override_is_the_company_s_limit() -> None:
    policy = JujuPolicy(max_users=5)
    five = {f"user{n}@partner.example.jp" for n in range(5)}
    assert policy.limit_for(None) == 5 and policy.limit_for(7) == 7
    assert not policy.refuses("new@partner.example.jp", five, 7)
    assert policy.refuses("new@partner.example.jp", five | {"sixth@partner.example.jp", "x@p.jp"}, 7)


def test_an_override_of_zero_closes_juju_to_the_company() -> None:
    policy = JujuPolicy(max_users=5)
    assert policy.limit_for(0) == 0
    assert policy.refuses("first@partner.example.jp", set(), 0)
