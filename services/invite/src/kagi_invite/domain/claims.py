"""Contract claims (water): an account links a customer number (お客さま番号) by proving it knows the contract.

Proof is the customer number and billing number (調定番号) plus at least one of phone number, service
address or the last 4 digits of the debit account. A refusal never says which part was wrong, and
matching never changes the contract. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import msgspec

from kagi_invite.domain.limits import valid_until, voids_after

_NOT_DIGITS = re.compile(r"\D+")
_SPACES = re.compile(r"[\s\-‐－ー−]+")


class ClaimExists(Exception):
    """The account has linked this customer number already."""


class WaterContract(msgspec.Struct, kw_only=True):
    id: str
    """The customer number (お客さま番号), upper-case."""
    billing_number: str
    name: str
    service_address: str
    phone: str = ""
    debit_last4: str = ""
    version: int = 1
    updated_at: datetime


class Claim(msgspec.Struct, kw_only=True):
    account_id: str
    customer_number: str
    main: bool = False
    linked_at: datetime
    email: str = ""
    """Where the claimant hears that another account linked the same number."""


def masked(number: str) -> str:
    """A customer number in a mail: enough to recognise, not enough to claim with."""
    return "*" * max(len(number) - 4, 0) + number[-4:]


class Proof(msgspec.Struct, kw_only=True):
    customer_number: str
    billing_number: str
    phone: str | None = None
    service_address: str | None = None
    debit_last4: str | None = None


def identifier(typed: str) -> str:
    """Customer and billing numbers: full-width folded, spaces and hyphens dropped, upper-case."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", typed)).upper()


def digits(typed: str) -> str:
    return _NOT_DIGITS.sub("", unicodedata.normalize("NFKC", typed))


def address(typed: str) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", typed))


def proof_problem(proof: Proof) -> str | None:
    """Only the shape is checked here; whether it matches is answered without saying which part failed."""
    if not identifier(proof.customer_number) or not identifier(proof.billing_number):
        return "お客さま番号と調定番号を入力してください。"
    if not ((proof.phone or "").strip() or (proof.service_address or "").strip() or (proof.debit_last4 or "").strip()):
        return "電話番号、使用場所、口座番号下4ケタのいずれかを入力してください。"
    return None


def matches(contract: WaterContract | None, proof: Proof) -> bool:
    """Customer and billing numbers must match, and at least one of the other facts given must match."""
    if contract is None:
        return False
    if identifier(proof.customer_number) != contract.id or identifier(proof.billing_number) != identifier(
            contract.billing_number):
        return False
    facts = []
    if proof.phone and contract.phone:
        facts.append(digits(proof.phone) == digits(contract.phone) and len(digits(proof.phone)) >= 10)
    if proof.service_address and contract.service_address:
        facts.append(address(proof.service_address) == address(contract.service_address))
    if proof.debit_last4 and contract.debit_last4:
        facts.append(digits(proof.debit_last4) == contract.debit_last4 and len(digits(proof.debit_last4)) == 4)
    return any(facts)


_MOBILE = re.compile(r"^0[789]0\d{8}$")
SMS_ALPHABET = "0123456789"
SMS_CODE_LENGTH = 6


def mobile_problem(typed: str) -> str | None:
    """SMS needs a mobile number (070/080/090, 11 digits); landlines cannot receive the code."""
    if not _MOBILE.match(digits(typed)):
        return "SMSを受信できる携帯電話番号(070/080/090で始まる11桁)を入力してください。"
    return None


def sms_destination(typed: str, claims: list[Claim], contracts: dict[str, WaterContract]) -> str:
    """Where the registration's SMS goes: the mobile number on file for the account's contracts (the main one
    first) when there is one, else the number typed. A code sent to any number typed in would prove only that
    the claimant holds *a* phone, not the contract's."""
    ordered = sorted(claims, key=lambda c: (not c.main, c.linked_at))
    for claim in ordered:
        contract = contracts.get(claim.customer_number)
        if contract is not None and contract.phone and mobile_problem(contract.phone) is None:
            return digits(contract.phone)
    return digits(typed)


def next_main(claims: list[Claim], removed: str) -> str | None:
    """When the main number goes, the oldest remaining one becomes main."""
    rest = sorted((c for c in claims if c.customer_number != removed), key=lambda c: c.linked_at)
    return rest[0].customer_number if rest else None


def above_recommended(count: int, recommended: int) -> bool:
    return count > recommended


@dataclass(frozen=True)
class ClaimPolicy:
    """SPEC §2 (water): above ``recommended_max`` (20) customer numbers an account is warned; the SMS code of the
    registration is valid ``sms_code_ttl_s`` (10 min) and the ``sms_max_attempts``-th wrong one voids it."""

    recommended_max: int = 20
    sms_code_ttl_s: int = 600
    sms_max_attempts: int = 5

    def warns(self, count: int) -> bool:
        return above_recommended(count, self.recommended_max)

    def sms_expires_at(self, issued_at: datetime) -> datetime:
        return valid_until(issued_at, self.sms_code_ttl_s)

    def sms_voided_by(self, attempts: int) -> bool:
        return voids_after(attempts, self.sms_max_attempts)
