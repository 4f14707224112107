"""Contract claims (water): link customer numbers by proof, pick the main one, remove, withdraw."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from kagi_invite.adapters.claims import ClaimRepository
from kagi_invite.adapters.invitations import InvitationRepository
from kagi_invite.adapters.locations import LocationRepository
from kagi_invite.domain.claims import (
    SMS_ALPHABET,
    SMS_CODE_LENGTH,
    Claim,
    ClaimExists,
    ClaimPolicy,
    Proof,
    WaterContract,
    identifier,
    masked,
    matches,
    mobile_problem,
    next_main,
    proof_problem,
    sms_destination,
)
from kagi_invite.domain.locations import newer
from kagi_invite.domain.step_up import StepUpCode, judge
from kagi_invite.service.invitations import InvitationService
from kagi_invite.service.outbox import SOURCE, publish_event
from kagi_shared import codes
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import invite as ev
from kagi_shared.jst import jp_datetime, jp_deadline
from kagi_shared.mongo import Store, Tx
from kagi_shared.notifications import request_notification
from kagi_shared.problems import FieldError, Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings


def claim_not_found() -> Problem:
    return Problem(404, "claim.not_found", "指定されたお客さま番号は登録されていません。")


class ClaimResult(msgspec.Struct, kw_only=True):
    claim: Claim
    count: int
    warning: str | None = None


_SMS_REFUSALS = {
    "expired": (410, "sms.code_expired", "SMS認証コードの有効期限が切れています。認証コードを再発行してください。"),
    "used": (409, "sms.code_used", "このSMS認証コードは使用済みです。"),
    "voided": (410, "sms.code_voided", "誤った認証コードが規定回数入力されたため、この認証コードは無効になりました。"),
    "replaced": (410, "sms.code_replaced", "新しい認証コードが発行されたため、この認証コードは無効です。"),
}


def sms_required() -> Problem:
    return Problem(403, "registration.sms_required",
                   "SMS認証が完了していません。SMSに届いた認証コードを入力して登録を完了してください。")


class ClaimService:
    def __init__(self, store: Store, repo: ClaimRepository, invitations: InvitationService,
                 invitation_repo: InvitationRepository, locations: LocationRepository, settings: Settings,
                 policy: ClaimPolicy, *, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.policy = policy
        self.store = store
        self.repo = repo
        self.invitations = invitations
        self.invitation_repo = invitation_repo
        self.locations = locations
        self.settings = settings

    async def ingest(self, tx: Tx, event: ev.WaterContractUpserted) -> bool:
        number = identifier(event.customer_number)
        if not newer(await self.repo.version(number, tx), event.version):
            return False
        await self.repo.upsert_contract(tx, WaterContract(
            id=number, billing_number=identifier(event.billing_number), name=event.name,
            service_address=event.service_address, phone=event.phone, debit_last4=event.debit_last4,
            version=event.version, updated_at=self.clock()))
        return True

    async def link(self, caller: Caller, proof: Proof, correlation_id: str | None = None) -> ClaimResult:
        """Match the proof against the stored contract (never changing it) and link the number."""
        if problem := proof_problem(proof):
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=[FieldError("body", problem)])
        limits = self.settings.invite
        await self.invitations.limit("claim", "account", caller.account_id, limits.claim_per_account)
        number = identifier(proof.customer_number)
        # Failures per contract and per address too: one account per guess, or one number from many accounts,
        # must not get unlimited tries at the three guessable facts. Counted up front, forgiven on success.
        failure_limits = (("contract", number, limits.claim_failures_per_contract),
                          ("ip", caller.ip, limits.claim_failures_per_ip))
        for kind, value, most in failure_limits:
            await self.invitations.limit("claim_failure", kind, value, most)
        if not matches(await self.repo.contract(number), proof):
            raise Problem(400, "claim.not_matched",
                          "ご入力いただいた内容では登録できません。お客さま番号、調定番号及び電話番号・使用場所・"
                          "口座番号下4ケタのいずれかに誤りがないかご確認ください。")
        for kind, value, _ in failure_limits:
            await self.invitations.forgive("claim_failure", kind, value)

        async def work(tx: Tx) -> ClaimResult:
            existing = await self.repo.claims_of(caller.account_id, tx)
            now = self.clock()
            claim = Claim(account_id=caller.account_id, customer_number=number, main=not existing,
                          linked_at=now, email=caller.email)
            others = [c for c in await self.repo.claimants(number, tx) if c.account_id != caller.account_id]
            await self.repo.add(tx, claim)
            publish_event(tx, ev.ContractLinked(account_id=caller.account_id, customer_number=number,
                                                main=claim.main), caller.account_id, correlation_id)
            for other in others:  # whoever already holds the number hears of the new claim
                if other.email:
                    request_notification(tx, self.settings.security.notify_key, source=SOURCE,
                                         template="contract_linked_elsewhere", recipient=other.email,
                                         category="security", account_id=other.account_id,
                                         variables={"customer_number": masked(number),
                                                    "linked_at": jp_datetime(now)},
                                         correlation_id=correlation_id)
            count = len(existing) + 1
            warn = self.policy.warns(count)
            return ClaimResult(claim=claim, count=count, warning="claims.above_recommended" if warn else None)

        try:
            return await self.store.transaction(work)
        except ClaimExists:
            raise Problem(409, "claim.already_linked", "このお客さま番号は既に登録されています。") from None

    async def claims(self, caller: Caller) -> tuple[list[Claim], dict[str, WaterContract]]:
        claims = await self.repo.claims_of(caller.account_id)
        return claims, await self.repo.contracts_by_number([c.customer_number for c in claims])

    async def contract(self, caller: Caller, customer_number: str) -> WaterContract:
        """A linked contract's data; shown only once the registration's SMS verification is done."""
        number = identifier(customer_number)
        if number not in {c.customer_number for c in await self.repo.claims_of(caller.account_id)}:
            raise claim_not_found()
        if await self.repo.sms_verified_at(caller.account_id) is None:
            raise sms_required()
        contract = await self.repo.contract(number)
        if contract is None:
            raise claim_not_found()
        return contract

    async def set_main(self, caller: Caller, customer_number: str, correlation_id: str | None = None) -> None:
        number = identifier(customer_number)

        async def work(tx: Tx) -> bool:
            if number not in {c.customer_number for c in await self.repo.claims_of(caller.account_id, tx)}:
                return False
            await self.repo.set_main(tx, caller.account_id, number)
            return True

        if not await self.store.transaction(work):
            raise claim_not_found()

    async def unlink(self, caller: Caller, customer_number: str, correlation_id: str | None = None) -> None:
        """Removing a number removes its visibility at once; linking it again (with proof) restores it."""
        number = identifier(customer_number)

        async def work(tx: Tx) -> bool:
            claims = await self.repo.claims_of(caller.account_id, tx)
            removed = next((c for c in claims if c.customer_number == number), None)
            if removed is None or not await self.repo.remove(tx, caller.account_id, number):
                return False
            if removed.main and (successor := next_main(claims, number)):
                await self.repo.set_main(tx, caller.account_id, successor)
            publish_event(tx, ev.ContractUnlinked(account_id=caller.account_id, customer_number=number),
                          caller.account_id, correlation_id)
            return True

        if not await self.store.transaction(work):
            raise claim_not_found()

    async def withdraw(self, caller: Caller, correlation_id: str | None = None) -> int:
        """退会: every contract link, co-user membership and viewer right of the account goes in one step.
        Irreversible, so a fresh step-up of this very session comes first (a stolen access token is not enough)."""
        await self.invitations.require_step_up(caller)

        async def work(tx: Tx) -> int:
            claims = await self.repo.claims_of(caller.account_id, tx)
            for claim in claims:
                publish_event(tx, ev.ContractUnlinked(account_id=caller.account_id,
                                                      customer_number=claim.customer_number),
                              caller.account_id, correlation_id)
            count = await self.repo.remove_all(tx, caller.account_id)
            await self.repo.forget_sms(tx, caller.account_id)
            await self.invitation_repo.remove_account(tx, caller.account_id)
            await self.locations.remove_account(tx, caller.account_id)
            publish_event(tx, ev.Withdrawn(account_id=caller.account_id, contracts_unlinked=count),
                          caller.account_id, correlation_id)
            return count

        return await self.store.transaction(work)

    # -- SMS verification (the last step of the registration) --------------------------------------
    async def issue_sms(self, caller: Caller, mobile: str, correlation_id: str | None = None) -> StepUpCode:
        """Send a 6-digit code to a mobile number (10 minutes); a re-issue replaces the previous code."""
        if problem := mobile_problem(mobile):
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=[FieldError("mobile", problem)])
        limits = self.settings.invite
        await self.invitations.limit("sms", "account", caller.account_id, limits.request_per_email)
        claims = await self.repo.claims_of(caller.account_id)
        recipient = sms_destination(mobile, claims, await self.repo.contracts_by_number(
            [c.customer_number for c in claims]))
        plain = codes.new_code(SMS_CODE_LENGTH, SMS_ALPHABET)
        now = self.clock()
        code = StepUpCode(id=str(uuid.uuid4()), account_id=caller.account_id,
                          code_hash=codes.hash_code(plain, self.settings.security.code_pepper), issued_at=now,
                          expires_at=self.policy.sms_expires_at(now))

        async def work(tx: Tx) -> None:
            await self.repo.replace_sms_code(tx, code)
            request_notification(tx, self.settings.security.notify_key, source=SOURCE, template="sms_verification",
                                 channel="sms", recipient=recipient, category="security", account_id=caller.account_id,
                                 variables={"code": plain, "expires_at": jp_deadline(code.expires_at)},
                                 subject=caller.account_id, correlation_id=correlation_id)

        await self.store.transaction(work)
        return code

    async def verify_sms(self, caller: Caller, entered: str, correlation_id: str | None = None) -> datetime:
        code = await self.repo.latest_sms_code(caller.account_id)
        if code is None:
            raise Problem(404, "sms.no_code", "SMS認証コードが発行されていません。認証コードを発行してください。")
        now = self.clock()
        max_attempts = self.policy.sms_max_attempts
        # Counted before judged, as the step-up code: concurrent guesses cannot outnumber the attempts.
        counted = await self.repo.claim_sms_attempt(code.id, max_attempts)
        if counted is None:
            verdict = judge(await self.repo.latest_sms_code(caller.account_id) or code, False, now)
            if verdict == "wrong":
                verdict = "voided"
        else:
            verdict = judge(counted, codes.verify_code(entered, code.code_hash, self.settings.security.code_pepper),
                            now)
        if verdict == "ok":
            async def succeed(tx: Tx) -> bool:
                if not await self.repo.set_sms_status(tx, code.id, "used"):
                    return False
                await self.repo.mark_sms_verified(tx, caller.account_id, now)
                return True

            if await self.store.transaction(succeed):
                return now
            verdict = "used"
        if verdict == "wrong" and counted is not None:
            if not self.policy.sms_voided_by(counted.attempts):
                raise Problem(400, "sms.code_wrong", "SMS認証コードが正しくありません。",
                              extra={"remainingAttempts": max_attempts - counted.attempts})

            async def void(tx: Tx) -> None:
                await self.repo.set_sms_status(tx, code.id, "voided")

            await self.store.transaction(void)
            verdict = "voided"
        status, error, title = _SMS_REFUSALS[verdict]
        raise Problem(status, error, title)

    async def sms_verified_at(self, caller: Caller) -> datetime | None:
        return await self.repo.sms_verified_at(caller.account_id)
