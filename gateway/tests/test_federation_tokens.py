"""An external provider's ID token is believed only when Authlib's checks pass against the provider's JWKS: forged
tokens (another key, another audience, another nonce, expired, another issuer, alg none) are refused. Real RSA keys,
real signatures; the provider's metadata is given rather than fetched (the network journey is in tests/e2e)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from authlib.integrations.base_client import FrameworkIntegration
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from kagi_gateway.federation import ExternalIdP, ExternalProvider, verified_subject
from kagi_shared.problems import Problem

ISSUER = "https://idp.example.jp"
PROVIDER = ExternalProvider(id="line", display_name="LINEでログイン", issuer=ISSUER, client_id="kagi-client",
                            client_secret="s3cret-s3cret")  # noqa: S106 - a test value
SIGNER = RSAKey.generate_key(2048, parameters={"kid": "idp-1", "alg": "RS256"}, private=True)
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "idp-1", "alg": "RS256"}, private=True)


def idp() -> ExternalIdP:
    return ExternalIdP(FrameworkIntegration("line"), name="line", client_id=PROVIDER.client_id,
                       client_secret=PROVIDER.client_secret, issuer=ISSUER,
                       jwks=KeySet([SIGNER]).as_dict(private=False),
                       id_token_signing_alg_values_supported=["RS256", "none"])


def id_token(key: RSAKey = SIGNER, **changes: Any) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "U1234567890", "aud": PROVIDER.client_id, "iat": now, "exp": now + 300,
              "nonce": "n-1", **changes}
    claims = {k: v for k, v in claims.items() if v is not None}
    return {"id_token": jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, key), "access_token": "at"}


async def test_a_genuine_token_gives_its_subject() -> None:
    assert await verified_subject(PROVIDER, idp(), id_token(), "n-1") == "U1234567890"


@pytest.mark.parametrize(("case", "token", "nonce"), [
    ("wrong signature", id_token(STRANGER), "n-1"),
    ("wrong audience", id_token(aud="someone-else"), "n-1"),
    ("replayed nonce (another flow's)", id_token(), "n-2"),
    ("no nonce", id_token(nonce=None), "n-1"),
    ("expired", id_token(iat=int(time.time()) - 4000, exp=int(time.time()) - 3600), "n-1"),
    ("wrong issuer", id_token(iss="https://evil.example"), "n-1"),
])
async def test_a_forged_token_is_refused(case: str, token: dict[str, str], nonce: str) -> None:
    with pytest.raises(Problem) as refused:
        await verified_subject(PROVIDER, idp(), token, nonce)
    assert refused.value.code == "federation.id_token_invalid", case


async def test_an_unsigned_token_is_refused_even_when_the_provider_offers_none() -> None:
    now = int(time.time())
    header = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    import base64
    import json
    body = base64.urlsafe_b64encode(json.dumps({"iss": ISSUER, "sub": "U1", "aud": PROVIDER.client_id, "iat": now,
                                                "exp": now + 300, "nonce": "n-1"}).encode()).rstrip(b"=").decode()
    with pytest.raises(Problem):
        await verified_subject(PROVIDER, idp(), {"id_token": f"{header}.{body}.", "access_token": "at"}, "n-1")


async def test_a_provider_whose_discovery_names_another_issuer_is_refused() -> None:
    other = ExternalIdP(FrameworkIntegration("line"), name="line", client_id="c", client_secret="s",  # noqa: S106
                        issuer="https://elsewhere.example", jwks=KeySet([SIGNER]).as_dict(private=False))
    with pytest.raises(Problem) as refused:
        await verified_subject(PROVIDER, other, id_token(), "n-1")
    assert refused.value.code == "federation.issuer_mismatch"
