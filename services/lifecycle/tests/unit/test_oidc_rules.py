"""The OpenID Provider's pure rules: client registration, which keys stay published, which code is redeemable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kagi_lifecycle.domain.oidc import (
    AuthorizationCode,
    OidcPolicy,
    SigningKey,
    check_registration,
    current_key,
    published_keys,
    redeemable,
)
from kagi_shared.problems import Problem

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def key(kid: str, created_min_ago: int, retired_min_ago: int | None = None) -> SigningKey:
    retired = NOW - timedelta(minutes=retired_min_ago) if retired_min_ago is not None else None
    return SigningKey(id=kid, private_jwk={}, created_at=NOW - timedelta(minutes=created_min_ago), retired_at=retired)


def test_a_retired_key_stays_published_while_its_tokens_live() -> None:
    policy = OidcPolicy(token_ttl_s=900)
    keys = [key("old", 120, 16), key("recent", 60, 5), key("now", 5)]
    assert [k.id for k in published_keys(keys, NOW, policy)] == ["recent", "now"]
    assert current_key(keys) == keys[2]
    assert current_key([key("old", 10, 1)]) is None


def test_a_code_is_redeemable_only_by_its_client_for_its_uri_before_expiry() -> None:
    code = AuthorizationCode(id="h", client_id="taxis-1", account_id="a", redirect_uri="https://t.example/cb",
                             code_challenge="c" * 43, nonce=None, scope="openid", auth_time=NOW, session_version=0,
                             expires_at=NOW + timedelta(seconds=60))
    assert redeemable(code, "taxis-1", "https://t.example/cb", NOW)
    assert not redeemable(code, "johs-1", "https://t.example/cb", NOW)
    assert not redeemable(code, "taxis-1", "https://t.example/cb2", NOW)
    assert not redeemable(code, "taxis-1", "https://t.example/cb", NOW + timedelta(seconds=60))
    assert not redeemable(None, "taxis-1", "https://t.example/cb", NOW)


@pytest.mark.parametrize(("system", "uris", "allow_http", "field"), [
    ("PMS", ["https://t.example/cb"], False, "system"),
    ("TAXIS", [], False, "redirectUris"),
    ("TAXIS", ["http://t.example/cb"], False, "redirectUris"),
    ("TAXIS", ["https://t.example/cb#frag"], True, "redirectUris"),
    ("TAXIS", ["/relative"], True, "redirectUris"),
])
def test_registration_refuses_with_the_field(system: str, uris: list[str], allow_http: bool, field: str) -> None:
    with pytest.raises(Problem) as refused:
        check_registration(system, uris, [], "TAXIS", allow_http=allow_http)
    assert refused.value.code == "oidc.client_invalid" and [e.field for e in refused.value.errors] == [field]


def test_registration_accepts_http_only_outside_production() -> None:
    check_registration("JOHS", ["http://127.0.0.1:9000/cb"], ["https://j.example/bye"], "JOHS 本番", allow_http=True)
