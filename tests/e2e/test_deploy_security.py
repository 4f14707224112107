"""Issue 15, finding 2: roles are what lifecycle says the account holds now, not what a token claims."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import jwt
import msgspec
import pytest

from kagi_shared.metrics import METRICS_OFFSET, api_metrics_port
from kagi_shared.settings import Settings
from tests.e2e.conftest import create_user, water_contract_stored


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


async def test_contract_claims_are_limited_per_contract_and_tell_the_holder(settings: Settings,
                                                                           gateway: httpx.AsyncClient) -> None:
    """Issue 15, finding 6: wrong proofs against one contract from many accounts run out; the SMS goes to the
    mobile number on file, not the one typed in; the account that holds the contract hears of a new claimant."""
    from kagi_cli.invite import publish_contracts, sample_water_contracts
    from tests.e2e.conftest import wait_for_mail
    from tests.e2e.test_invite import pass_sms_check, sms_code_for

    tag = uuid.uuid4().hex[:6].upper()
    on_file = f"080{uuid.uuid4().int % 10**8:08d}"
    water = msgspec.structs.replace(sample_water_contracts(1)[0], customer_number=f"W{tag}", phone=on_file)
    await publish_contracts(settings, [water])
    await water_contract_stored(settings, water.customer_number)
    proof = {"customerNumber": water.customer_number, "billingNumber": water.billing_number, "phone": on_file}

    holder = await create_user(settings, gateway, ["owner"])
    assert (await gateway.post("/api/v1/me/contracts", headers=holder.auth, json=proof)).status_code == 201

    # A different mobile typed in: the code still goes to the number the utility has for the contract.
    typed = f"090{uuid.uuid4().int % 10**8:08d}"
    await pass_sms_check(gateway, settings, holder.auth, typed, on_file=on_file)
    with pytest.raises(AssertionError, match="no SMS"):
        await sms_code_for(settings, typed, timeout_s=1)

    # Guessers, each with a fresh account (the per-account limit alone would never stop them).
    limit = settings.invite.claim_failures_per_contract
    for _ in range(limit):
        guesser = await create_user(settings, gateway, ["owner"])
        wrong = await gateway.post("/api/v1/me/contracts", headers=guesser.auth,
                                   json={**proof, "phone": "0312345678"})
        assert (wrong.status_code, wrong.json()["code"]) == (400, "claim.not_matched")
    late = await create_user(settings, gateway, ["owner"])
    refused = await gateway.post("/api/v1/me/contracts", headers=late.auth, json=proof)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1

    # A success is not a failure: another contract links, and its holder is told when a second account does.
    other = msgspec.structs.replace(water, customer_number=f"W{tag}X", phone="0664581999")
    await publish_contracts(settings, [other])
    await water_contract_stored(settings, other.customer_number)
    other_proof = {**proof, "customerNumber": other.customer_number, "phone": other.phone}
    assert (await gateway.post("/api/v1/me/contracts", headers=holder.auth, json=other_proof)).status_code == 201
    second = await create_user(settings, gateway, ["owner"])
    assert (await gateway.post("/api/v1/me/contracts", headers=second.auth, json=other_proof)).status_code == 201
    [notice] = await wait_for_mail(settings, holder.login_id)
    assert "別のアカウントにも登録されました" in notice.body
    assert other.customer_number not in notice.body and other.customer_number[-4:] in notice.body


async def test_the_gateway_serves_metrics_on_its_own_port_only(settings: Settings, gateway: httpx.AsyncClient) -> None:
    """Issue 15, finding 11: the public port does not serve /metrics (route names, volumes, internal state)."""
    public = await gateway.get("/metrics")
    assert public.status_code in (401, 403, 404), public.text[:200]
    assert "kagi_http_requests_total" not in public.text
    async with httpx.AsyncClient(timeout=10) as client:
        scraped = await client.get(f"http://127.0.0.1:{settings.ports.gateway_metrics}/metrics")
    assert scraped.status_code == 200
    assert 'kagi_http_requests_total{' in scraped.text and 'process="gateway"' in scraped.text


async def test_service_apis_serve_metrics_on_their_metrics_port_only(system: str, settings: Settings) -> None:
    """Issue 15, finding 9: the monitoring namespace scrapes a port of its own; an API's port, which only the
    gateway may reach, serves no /metrics (nor would a scraper that may reach it be let into the API)."""
    async with httpx.AsyncClient(timeout=10) as client:
        for service in METRICS_OFFSET:
            api = await client.get(f"{settings.service_url(service)}/metrics")
            assert api.status_code == 404, (service, api.text[:200])
            scraped = await client.get(f"http://127.0.0.1:{api_metrics_port(settings, service)}/metrics")
            assert scraped.status_code == 200, service
            assert f'process="{service}-api"' in scraped.text, service
            other = await client.get(f"http://127.0.0.1:{api_metrics_port(settings, service)}/ready")
            assert other.status_code == 404, service  # the metrics port answers nothing else


async def test_the_counters_alerts_watch_exist_from_start_up(system: str, settings: Settings) -> None:
    """Issue 17, item 5: an alert on "nothing happened" (no sweep) or on a first failure needs the series at 0
    before anything happened; the workers create them when they start (exposition sorts the labels)."""
    base = settings.ports.worker_metrics_base
    expected = {
        1: ['kagi_lifecycle_ladder_stages_applied_total{stage="warning1"} 0.0',
            'kagi_events_consumed_total{consumer="lifecycle.external_logins",outcome="dead",topic="auth.logins"} 0.0'],
        2: ['kagi_events_consumed_total{consumer="invite.contracts",outcome="dead",topic="contracts.upserted"} 0.0'],
        4: ['kagi_notify_deliveries_total{channel="mail",result="dead",template="viewer_removed"} 0.0',
            'kagi_notify_deliveries_total{channel="sms",result="dead",template="sms_verification"} 0.0'],
        5: ['kagi_events_consumed_total{consumer="audit",outcome="dead",topic="audit.events"} 0.0',
            'kagi_outbox_published_total{service="'],
    }
    async with httpx.AsyncClient(timeout=5) as http:
        for offset, series in expected.items():
            text = ""
            for _ in range(100):  # a worker primes its consumers once its app is built
                text = (await http.get(f"http://127.0.0.1:{base + offset}/metrics")).text
                if all(s in text for s in series):
                    break
                await asyncio.sleep(0.1)
            for s in series:
                assert s in text, f"worker {offset}: no {s}"
