"""Water contracts (from ``contracts.upserted``) and the accounts' claims on them, in MongoDB."""

from __future__ import annotations

from datetime import datetime

import msgspec
from pymongo import ASCENDING, DESCENDING, IndexModel

from kagi_invite.adapters.documents import (
    Collection,
    Collections,
    delete_pair,
    find_pairs,
    insert_pair,
    pair_id,
    stored_version,
    upsert_versioned,
)
from kagi_invite.adapters.repository import claim_attempt
from kagi_invite.domain.claims import Claim, ClaimExists, WaterContract
from kagi_invite.domain.step_up import StepUpCode
from kagi_shared.mongo import Tx

WATER_CONTRACTS = "water_contracts"
CLAIMS = "contract_claims"
SMS_CODES = "sms_codes"
SMS_VERIFIED = "sms_verified"


class ClaimRepository(Collections):
    contracts = Collection(WATER_CONTRACTS)
    claims = Collection(CLAIMS, IndexModel([("account_id", ASCENDING), ("linked_at", ASCENDING)]))
    sms_codes = Collection(SMS_CODES, IndexModel([("account_id", ASCENDING), ("issued_at", DESCENDING)]))
    sms_verified = Collection(SMS_VERIFIED)

    async def version(self, customer_number: str, tx: Tx) -> int | None:
        return await stored_version(self.contracts, tx, customer_number)

    async def upsert_contract(self, tx: Tx, contract: WaterContract) -> None:
        await upsert_versioned(self.contracts, tx, contract, contract.id)

    async def contract(self, customer_number: str) -> WaterContract | None:
        doc = await self.contracts.find_one({"_id": customer_number})
        if doc is None:
            return None
        doc["id"] = doc.pop("_id")
        return msgspec.convert(doc, WaterContract)

    async def contracts_by_number(self, numbers: list[str]) -> dict[str, WaterContract]:
        out = {}
        for doc in await self.contracts.find({"_id": {"$in": numbers}}).to_list():
            doc["id"] = doc.pop("_id")
            out[doc["id"]] = msgspec.convert(doc, WaterContract)
        return out

    async def claims_of(self, account_id: str, tx: Tx | None = None) -> list[Claim]:
        return await find_pairs(self.claims, Claim, {"account_id": account_id}, "linked_at", tx)

    async def claimants(self, customer_number: str, tx: Tx) -> list[Claim]:
        return await find_pairs(self.claims, Claim, {"customer_number": customer_number}, tx=tx)

    async def add(self, tx: Tx, claim: Claim) -> None:
        doc = msgspec.to_builtins(claim, builtin_types=(datetime,))
        doc["_id"] = pair_id(claim.account_id, claim.customer_number)
        await insert_pair(self.claims, tx, doc, ClaimExists)

    async def remove(self, tx: Tx, account_id: str, customer_number: str) -> bool:
        return await delete_pair(self.claims, tx, account_id, customer_number)

    async def set_main(self, tx: Tx, account_id: str, customer_number: str) -> None:
        await self.claims.update_many({"account_id": account_id, "main": True}, {"$set": {"main": False}},
                                      session=tx.session)
        await self.claims.update_one({"_id": pair_id(account_id, customer_number)}, {"$set": {"main": True}},
                                     session=tx.session)

    async def remove_all(self, tx: Tx, account_id: str) -> int:
        result = await self.claims.delete_many({"account_id": account_id}, session=tx.session)
        return int(result.deleted_count)

    # -- SMS verification of the registration ----------------------------------------------------
    async def replace_sms_code(self, tx: Tx, code: StepUpCode) -> None:
        await self.sms_codes.update_many({"account_id": code.account_id, "status": "active"},
                                         {"$set": {"status": "replaced"}}, session=tx.session)
        doc = msgspec.structs.asdict(code)
        doc["_id"] = doc.pop("id")
        await self.sms_codes.insert_one(doc, session=tx.session)

    async def latest_sms_code(self, account_id: str) -> StepUpCode | None:
        doc = await self.sms_codes.find_one({"account_id": account_id}, sort=[("issued_at", DESCENDING)])
        if doc is None:
            return None
        doc["id"] = doc.pop("_id")
        return msgspec.convert(doc, StepUpCode)

    async def claim_sms_attempt(self, code_id: str, max_attempts: int) -> StepUpCode | None:
        return await claim_attempt(self.sms_codes, code_id, max_attempts)

    async def set_sms_status(self, tx: Tx, code_id: str, status: str) -> bool:
        result = await self.sms_codes.update_one({"_id": code_id, "status": "active"}, {"$set": {"status": status}},
                                                 session=tx.session)
        return result.modified_count == 1

    async def mark_sms_verified(self, tx: Tx, account_id: str, at: datetime) -> None:
        await self.sms_verified.update_one({"_id": account_id}, {"$set": {"verified_at": at}}, upsert=True,
                                           session=tx.session)

    async def sms_verified_at(self, account_id: str) -> datetime | None:
        doc = await self.sms_verified.find_one({"_id": account_id})
        return doc["verified_at"] if doc else None

    async def forget_sms(self, tx: Tx, account_id: str) -> None:
        await self.sms_verified.delete_one({"_id": account_id}, session=tx.session)
        await self.sms_codes.delete_many({"account_id": account_id}, session=tx.session)
