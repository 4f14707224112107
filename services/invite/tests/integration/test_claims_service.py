"""Water contract claims against the real database: proof, main number, removal, withdrawal."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from invite_helpers import NoDeadLetters, open_step_up, refusal, started

from kagi_cli.invite import sample_water_contracts
from kagi_invite.bootstrap import Invite, contracts
from kagi_invite.domain.claims import Proof
from kagi_shared.events import invite as ev
from kagi_shared.events import new_envelope
from kagi_shared.events.envelope import encode
from kagi_shared.mongo import OUTBOX
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from tests.support import opened_request

ACCOUNT = Caller(account_id="water-1", login_id="w@example.jp", email="w@example.jp", roles=("owner",),
               session_id="s-1")


async def arrive(invite: Invite, settings: Settings, events: list[ev.WaterContractUpserted]) -> None:
    consumer = contracts(invite, NoDeadLetters(), settings)
    for event in events:
        envelope = new_envelope(event, source="test", subject=event.customer_number)
        assert await consumer.process("contracts.upserted", None, encode(envelope)) == "handled"


def proof_for(event: ev.WaterContractUpserted, **changes: str) -> Proof:
    base = {"customer_number": event.customer_number, "billing_number": event.billing_number, "phone": event.phone}
    return Proof(**{**base, **changes})


async def sms_code(invite: Invite) -> str:
    rows = await invite.store.db[OUTBOX].find({"topic": "notify.requests"}).sort("seq", -1).limit(1).to_list()
    data = msgspec.json.decode(bytes(rows[0]["value"]))["data"]
    assert (data["template"], data["channel"]) == ("sms_verification", "sms")
    return str(opened_request(data)["variables"]["code"])


async def sms_verified(invite: Invite, caller: Caller = ACCOUNT) -> None:
    await invite.claims.issue_sms(caller, "090-1234-5678")
    await invite.claims.verify_sms(caller, await sms_code(invite))


async def test_link_by_proof_and_refuse_without_saying_why(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    [water] = sample_water_contracts(1)
    await arrive(invite, settings, [water])
    wrong_billing = await refusal(invite.claims.link(ACCOUNT, proof_for(water, billing_number="12A0000")))
    wrong_phone = await refusal(invite.claims.link(ACCOUNT, proof_for(water, phone="0000000000")))
    unknown = await refusal(invite.claims.link(ACCOUNT, proof_for(water, customer_number="W9999999")))
    assert wrong_billing.body() == wrong_phone.body() == unknown.body()
    assert wrong_billing.code == "claim.not_matched"
    before = await invite.store.db["water_contracts"].find_one({"_id": water.customer_number})

    result = await invite.claims.link(ACCOUNT, Proof(customer_number=water.customer_number.lower(),
                                                     billing_number=water.billing_number,
                                                     service_address="違う住所", debit_last4=water.debit_last4))
    assert result.claim.main and result.count == 1 and result.warning is None
    assert await invite.store.db["water_contracts"].find_one({"_id": water.customer_number}) == before
    again = await refusal(invite.claims.link(ACCOUNT, proof_for(water)))
    assert again.code == "claim.already_linked"


async def test_main_number_removal_and_re_adding(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    waters = sample_water_contracts(3)
    await arrive(invite, settings, waters)
    for water in waters:
        await invite.claims.link(ACCOUNT, proof_for(water))
    claims, _ = await invite.claims.claims(ACCOUNT)
    assert [c.main for c in claims] == [True, False, False]
    await sms_verified(invite)
    await invite.claims.set_main(ACCOUNT, waters[2].customer_number)
    assert [c.main for c in (await invite.claims.claims(ACCOUNT))[0]] == [False, False, True]

    await invite.claims.unlink(ACCOUNT, waters[2].customer_number)
    claims, found = await invite.claims.claims(ACCOUNT)
    assert [c.customer_number for c in claims] == [w.customer_number for w in waters[:2]]
    assert sorted(found) == sorted(w.customer_number for w in waters[:2])
    assert [c.main for c in claims] == [True, False]  # the oldest remaining one became main
    assert (await refusal(invite.claims.contract(ACCOUNT, waters[2].customer_number))).code == "claim.not_found"
    assert (await refusal(invite.claims.set_main(ACCOUNT, waters[2].customer_number))).code == "claim.not_found"
    await invite.claims.link(ACCOUNT, proof_for(waters[2]))
    assert (await invite.claims.contract(ACCOUNT, waters[2].customer_number)).name == waters[2].name
    other = Caller(account_id="water-2", login_id="o@example.jp", email="o@example.jp", roles=("owner",),
               session_id="s-1")
    assert (await refusal(invite.claims.contract(other, waters[0].customer_number))).code == "claim.not_found"


async def test_warning_above_the_recommended_count(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory, claim_recommended_max=2)
    waters = sample_water_contracts(3)
    await arrive(invite, settings, waters)
    results = [await invite.claims.link(ACCOUNT, proof_for(w)) for w in waters]
    assert [r.warning for r in results] == [None, None, "claims.above_recommended"]


async def test_wrong_proofs_are_rate_limited(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory, claim_per_account=3)
    [water] = sample_water_contracts(1)
    await arrive(invite, settings, [water])
    codes = [(await refusal(invite.claims.link(ACCOUNT, proof_for(water, phone="0000000000")))).code
             for _ in range(4)]
    assert codes == ["claim.not_matched"] * 3 + ["rate_limited"]


async def test_withdrawal_removes_every_link_and_allows_linking_again(settings: Settings,
                                                                     store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    waters = sample_water_contracts(2)
    await arrive(invite, settings, waters)
    for water in waters:
        await invite.claims.link(ACCOUNT, proof_for(water))
    assert (await refusal(invite.claims.withdraw(ACCOUNT))).code == "step_up.required"
    await open_step_up(invite, ACCOUNT)
    assert await invite.claims.withdraw(ACCOUNT) == 2
    assert (await invite.claims.claims(ACCOUNT))[0] == []
    rows = await invite.store.db[OUTBOX].find({"topic": "invite.events"}).sort("seq", 1).to_list()
    types = [msgspec.json.decode(bytes(r["value"]))["type"] for r in rows]
    assert types[-3:] == ["kagi.invite.contract_unlinked", "kagi.invite.contract_unlinked", "kagi.invite.withdrawn"]
    assert (await invite.claims.link(ACCOUNT, proof_for(waters[0]))).claim.main


async def test_registration_completes_with_the_sms_code(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    [water] = sample_water_contracts(1)
    await arrive(invite, settings, [water])
    await invite.claims.link(ACCOUNT, proof_for(water))
    pending = await refusal(invite.claims.contract(ACCOUNT, water.customer_number))
    assert (pending.status, pending.code) == (403, "registration.sms_required")
    landline = await refusal(invite.claims.issue_sms(ACCOUNT, "03-1234-5678"))
    assert landline.code == "request.invalid" and landline.errors[0].field == "mobile"
    assert (await refusal(invite.claims.verify_sms(ACCOUNT, "123456"))).code == "sms.no_code"

    await invite.claims.issue_sms(ACCOUNT, "090-1234-5678")
    first = await sms_code(invite)
    await invite.claims.issue_sms(ACCOUNT, "090-1234-5678")  # re-issue
    second = await sms_code(invite)
    stored = await invite.store.db["sms_codes"].find().to_list()
    assert first not in str(stored) and second not in str(stored)
    if first != second:
        assert (await refusal(invite.claims.verify_sms(ACCOUNT, first))).code == "sms.code_wrong"
    await invite.claims.verify_sms(ACCOUNT, second)
    assert (await invite.claims.contract(ACCOUNT, water.customer_number)).name == water.name
    assert (await refusal(invite.claims.verify_sms(ACCOUNT, second))).code == "sms.code_used"


async def test_sms_code_expires_after_its_ttl_and_wrong_codes_void_it(settings: Settings,
                                                                      store_factory: Any) -> None:
    invite = await started(settings, store_factory, sms_code_ttl_s=1)
    await invite.claims.issue_sms(ACCOUNT, "08012345678")
    code = await sms_code(invite)
    wrong = "000000" if code != "000000" else "111111"
    remaining = [(await refusal(invite.claims.verify_sms(ACCOUNT, wrong))).extra.get("remainingAttempts")
                 for _ in range(4)]
    assert remaining == [4, 3, 2, 1]
    assert (await refusal(invite.claims.verify_sms(ACCOUNT, wrong))).code == "sms.code_voided"
    await invite.claims.issue_sms(ACCOUNT, "08012345678")
    fresh = await sms_code(invite)
    await asyncio.sleep(1.1)
    assert (await refusal(invite.claims.verify_sms(ACCOUNT, fresh))).code == "sms.code_expired"


async def test_an_sms_attempt_is_counted_before_the_guess_is_judged(settings: Settings, store_factory: Any) -> None:
    """Issue 15 finding 11: guesses that already took every attempt leave none for the right code."""
    invite = await started(settings, store_factory)
    await invite.claims.issue_sms(ACCOUNT, "090-1234-5678")
    code = await sms_code(invite)
    await invite.store.db["sms_codes"].update_many({"status": "active"},
                                                   {"$set": {"attempts": settings.invite.sms_max_attempts}})
    assert (await refusal(invite.claims.verify_sms(ACCOUNT, code))).code == "sms.code_voided"
