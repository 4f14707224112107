"""Issue 15, finding 2: roles are what lifecycle says the account holds now, not what a token claims."""

from __future__ import annotations

import httpx
import jwt

from kagi_shared.settings import Settings
from tests.e2e.conftest import create_user


async def test_a_token_claiming_more_roles_than_the_account_holds_is_refused(
    settings: Settings, gateway: httpx.AsyncClient,
) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    claims = jwt.decode(owner.token, options={"verify_signature": False})
    # A key that leaked (or a token minted before a role was taken away) must not widen the account's rights.
    forged = jwt.encode({**claims, "roles": ["owner", "operator"]}, settings.security.jwt_secret, algorithm="HS256",
                        headers={"kid": jwt.get_unverified_header(owner.token)["kid"]})  # the key's public name
    auth = {"Authorization": f"Bearer {forged}"}
    refused = await gateway.get("/api/v1/operator/unlock-requests", headers=auth)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "auth.forbidden"
    assert (await gateway.get("/api/v1/me", headers=auth)).status_code == 200  # the role it does hold still works
