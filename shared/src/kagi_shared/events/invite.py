"""Events of the invite service (topic ``invite.events``, key: the owner's account id).

None of them carries a key, link token or code: those travel to notify on ``notify.requests`` only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import msgspec

from kagi_shared.events.envelope import Event, register


class StepUpCodeIssued(Event, frozen=True, tag="kagi.invite.step_up_code_issued"):
    account_id: str
    code_id: str
    expires_at: datetime


class StepUpVerified(Event, frozen=True, tag="kagi.invite.step_up_verified"):
    account_id: str
    code_id: str
    valid_until: datetime


class StepUpFailed(Event, frozen=True, tag="kagi.invite.step_up_failed"):
    account_id: str
    code_id: str | None
    reason: str


class OwnerEvent(Event, frozen=True):
    """An event about what one owner shares (their keys, co-users, viewers): the owner is the key."""

    owner_id: str


class KeyEvent(OwnerEvent, frozen=True):
    """An event about one of the owner's keys (an invitation key or a viewer key)."""

    key_id: str


class CoUserEvent(OwnerEvent, frozen=True):
    """An event about one co-user of the owner."""

    account_id: str


class ViewerEvent(OwnerEvent, frozen=True):
    """An event about one viewer of one of the owner's usage locations."""

    location_id: str
    account_id: str


class KeyIssued(KeyEvent, frozen=True, tag="kagi.invite.key_issued"):
    expires_at: datetime


class KeyRevoked(KeyEvent, frozen=True, tag="kagi.invite.key_revoked"):
    pass


class KeyVoided(KeyEvent, frozen=True, tag="kagi.invite.key_voided"):
    attempts: int


class KeyRedeemed(KeyEvent, frozen=True, tag="kagi.invite.key_redeemed"):
    account_id: str
    account_type: str
    new_account: bool


class InvitationRequested(Event, frozen=True, tag="kagi.invite.invitation_requested"):
    """An invitee asked for a confirmation link (the address is not on the event: it may be anyone's)."""

    link_id: str
    expires_at: datetime


class CoUserRemoved(CoUserEvent, frozen=True, tag="kagi.invite.co_user_removed"):
    pass


class RepresentativeChanged(CoUserEvent, frozen=True, tag="kagi.invite.representative_changed"):
    pass


class ViewerKeyIssued(KeyEvent, frozen=True, tag="kagi.invite.viewer_key_issued"):
    location_id: str
    expires_at: datetime


class ViewerAdded(ViewerEvent, frozen=True, tag="kagi.invite.viewer_added"):
    key_id: str


class ViewerRemoved(ViewerEvent, frozen=True, tag="kagi.invite.viewer_removed"):
    reason: Literal["removed_by_owner", "owner_changed"] = "removed_by_owner"
    """``owner_changed``: the location has a new owner, so what the previous one shared ended."""


class Statement(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One month's bill (ご利用明細)."""

    month: str
    amount_yen: int
    usage_kwh: float


class EnergyReading(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One day's consumption (エネみえ)."""

    day: date
    kwh: float


class ContractUpserted(Event, frozen=True, tag="kagi.contracts.contract_upserted"):
    """A usage location's contract as the billing system knows it (topic ``contracts.upserted``).

    Published by the utility's systems, keyed by the supply-point number; the latest version wins.
    """

    owner_account_id: str
    supply_point_number: str
    customer_number: str
    name: str
    address: str
    contract: dict[str, str] = msgspec.field(default_factory=dict)
    statements: list[Statement] = msgspec.field(default_factory=list)
    energy: list[EnergyReading] = msgspec.field(default_factory=list)
    version: int = 1


class WaterContractUpserted(Event, frozen=True, tag="kagi.contracts.water_contract_upserted"):
    """A water contract as the waterworks bureau knows it (topic ``contracts.upserted``, key: customer number).

    The phone number, service address and debit-account digits are what a claimant must know; they
    stay inside invite and are never shown back.
    """

    customer_number: str
    billing_number: str
    name: str
    service_address: str
    phone: str = ""
    debit_last4: str = ""
    version: int = 1


class ContractLinked(Event, frozen=True, tag="kagi.invite.contract_linked"):
    account_id: str
    customer_number: str
    main: bool


class ContractUnlinked(Event, frozen=True, tag="kagi.invite.contract_unlinked"):
    account_id: str
    customer_number: str


class Withdrawn(Event, frozen=True, tag="kagi.invite.withdrawn"):
    """退会: every link of the account is gone; lifecycle may now release the email for re-registration."""

    account_id: str
    contracts_unlinked: int


register(StepUpCodeIssued, StepUpVerified, StepUpFailed, KeyIssued, KeyRevoked, KeyVoided, KeyRedeemed,
         InvitationRequested, CoUserRemoved, RepresentativeChanged, ViewerKeyIssued, ViewerAdded, ViewerRemoved,
         ContractUpserted, WaterContractUpserted, ContractLinked, ContractUnlinked, Withdrawn)
