"""Usage locations and viewer keys: the owner shares one location read-only, and takes it back at once."""

from __future__ import annotations

import uuid

from kagi_invite.adapters.locations import LocationRepository
from kagi_invite.domain.invitations import KEY_LENGTH, key_format_problem
from kagi_invite.domain.locations import (
    AlreadyViewer,
    Location,
    ViewerKey,
    ViewerKeyPolicy,
    ViewerRight,
    can_view,
    judge_viewer_key,
    newer,
    page_bounds,
)
from kagi_invite.service.invitations import InvitationService
from kagi_invite.service.outbox import publish_event, request_mail, request_removal_mails
from kagi_shared import codes
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import invite as ev
from kagi_shared.jst import jp_datetime
from kagi_shared.mongo import Store, Tx
from kagi_shared.problems import FieldError, Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings

_KEY_REFUSALS = {
    "expired": (410, "viewer_key.expired",
                "認証キーの有効期限(発行から24時間)が切れています。再度発行を依頼してください。"),
    "redeemed": (409, "viewer_key.used", "この認証キーは登録済みです。"),
    "revoked": (410, "viewer_key.revoked", "この認証キーは取り消されています。"),
}


def location_not_found() -> Problem:
    return Problem(404, "location.not_found", "指定されたご使用場所が見つかりません。")



class LocationService:
    def __init__(self, store: Store, repo: LocationRepository, invitations: InvitationService,
                 settings: Settings, policy: ViewerKeyPolicy, *, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.store = store
        self.repo = repo
        self.invitations = invitations
        self.settings = settings
        self.policy = policy

    # -- contract data from outside ----------------------------------------------------------------
    async def ingest(self, tx: Tx, event: ev.ContractUpserted) -> bool:
        """Store a location's contract from ``contracts.upserted``; an older version never overwrites a newer.

        A new owner (the tenant moved out, another moved in) ends what the previous owner shared: its viewers'
        rights and its viewer keys not yet redeemed. Otherwise an outgoing tenant's key, redeemed after the
        move, would read the new occupant's statements.
        """
        if not newer(await self.repo.version(event.supply_point_number, tx), event.version):
            return False
        previous = await self.repo.owner(event.supply_point_number, tx)
        if previous is not None and previous != event.owner_account_id:
            await self._end_sharing(tx, previous, event)
        await self.repo.upsert(tx, Location(
            id=event.supply_point_number, owner_id=event.owner_account_id, customer_number=event.customer_number,
            name=event.name, address=event.address, contract=dict(event.contract),
            statements=[{"month": s.month, "amountYen": s.amount_yen, "usageKwh": s.usage_kwh}
                        for s in event.statements],
            energy=[{"day": r.day.isoformat(), "kwh": r.kwh} for r in event.energy],
            version=event.version, updated_at=self.clock()))
        return True

    async def _end_sharing(self, tx: Tx, previous_owner: str, event: ev.ContractUpserted) -> None:
        await self.repo.revoke_pending_keys(tx, event.supply_point_number)
        now = self.clock()
        for right in await self.repo.remove_rights_of_location(tx, event.supply_point_number):
            publish_event(tx, ev.ViewerRemoved(owner_id=previous_owner, location_id=right.location_id,
                                               account_id=right.account_id, reason="owner_changed"),
                          previous_owner, None)
            request_mail(tx, self.settings, "viewer_removed", right.email,
                         {"location_name": event.name, "viewer_login_id": right.login_id,
                          "removed_at": jp_datetime(now)}, None, right.account_id)

    # -- the owner ---------------------------------------------------------------------------------
    async def search(self, caller: Caller, query: str, page: int, per_page: int) -> tuple[list[Location], int]:
        skip, limit = page_bounds(page, per_page)
        return await self.repo.search(caller.account_id, query.strip()[:64], skip, limit)

    async def _own(self, caller: Caller, location_id: str) -> Location:
        location = await self.repo.get(location_id)
        if location is None or location.owner_id != caller.account_id:
            raise location_not_found()  # someone else's location looks exactly like a missing one
        return location

    async def issue_viewer_key(self, caller: Caller, location_id: str,
                               correlation_id: str | None = None) -> tuple[str, ViewerKey, Location]:
        await self.invitations.require_step_up(caller)
        location = await self._own(caller, location_id)
        now = self.clock()
        plain = codes.new_code(KEY_LENGTH)
        key = ViewerKey(id=str(uuid.uuid4()), owner_id=caller.account_id, location_id=location.id,
                        key_hash=codes.hash_code(plain, self.settings.security.code_pepper), issued_at=now,
                        expires_at=self.policy.key_expires_at(now),
                        owner_email=caller.email)

        async def work(tx: Tx) -> None:
            await self.repo.add_key(tx, key)
            publish_event(tx, ev.ViewerKeyIssued(owner_id=caller.account_id, key_id=key.id, location_id=location.id,
                                                 expires_at=key.expires_at), caller.account_id, correlation_id)

        await self.store.transaction(work)
        return plain, key, location

    async def viewers(self, caller: Caller, location_id: str) -> list[ViewerRight]:
        await self._own(caller, location_id)
        return await self.repo.rights_of_location(location_id)

    async def remove_viewer(self, caller: Caller, location_id: str, account_id: str,
                            correlation_id: str | None = None) -> None:
        location = await self._own(caller, location_id)
        right = await self.repo.right(location_id, account_id)
        if right is None:
            raise Problem(404, "viewer.not_found", "指定された閲覧者が見つかりません。")
        now = self.clock()

        async def work(tx: Tx) -> bool:
            if not await self.repo.remove_right(tx, location_id, account_id):
                return False
            publish_event(tx, ev.ViewerRemoved(owner_id=caller.account_id, location_id=location_id,
                                               account_id=account_id), caller.account_id, correlation_id)
            request_removal_mails(tx, self.settings, "viewer_removed", right.email, account_id, caller,
                                  {"location_name": location.name, "viewer_login_id": right.login_id}, now,
                                  correlation_id)
            return True

        if not await self.store.transaction(work):
            raise Problem(404, "viewer.not_found", "指定された閲覧者が見つかりません。")

    # -- the viewer --------------------------------------------------------------------------------
    async def add_viewing(self, caller: Caller, typed_key: str, correlation_id: str | None = None) -> Location:
        """閲覧場所追加: register a viewer key; the location then appears read-only for the caller."""
        limits = self.settings.invite
        await self.invitations.limit("viewer", "account", caller.account_id, limits.redeem_per_email)
        await self.invitations.limit("viewer", "ip", caller.ip, limits.redeem_per_ip)
        if problem := key_format_problem(typed_key):
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=[FieldError("key", problem)])
        key = await self.repo.key_by_hash(codes.hash_code(typed_key, self.settings.security.code_pepper))
        if key is None:
            raise Problem(400, "viewer_key.wrong", "認証キーが正しくありません。")
        now = self.clock()
        verdict = judge_viewer_key(key, now)
        if verdict != "ok":
            status, code, title = _KEY_REFUSALS[verdict]
            raise Problem(status, code, title)
        location = await self.repo.get(key.location_id)
        if location is None:
            raise location_not_found()
        already = await self.repo.right(location.id, caller.account_id) is not None
        match can_view(location.owner_id, caller.account_id, already):
            case "own_location":
                raise Problem(409, "viewer_key.own_location", "ご自身のご使用場所の認証キーは登録できません。")
            case "already_viewer":
                raise Problem(409, "viewer.already_added", "このご使用場所は既に閲覧場所に追加されています。")
        right = ViewerRight(owner_id=location.owner_id, location_id=location.id, account_id=caller.account_id,
                            login_id=caller.login_id, email=caller.email, key_id=key.id, added_at=now)

        async def work(tx: Tx) -> bool:
            if not await self.repo.redeem_key(tx, key.id, caller.account_id, now):
                return False
            await self.repo.add_right(tx, right)
            publish_event(tx, ev.ViewerAdded(owner_id=location.owner_id, location_id=location.id,
                                             account_id=caller.account_id, key_id=key.id),
                          location.owner_id, correlation_id)
            request_mail(tx, self.settings, "viewer_added", key.owner_email, {"location_name": location.name,
                                                                          "viewer_login_id": caller.login_id,
                                                                          "added_at": jp_datetime(now)},
                         correlation_id, location.owner_id)
            return True

        try:
            done = await self.store.transaction(work)
        except AlreadyViewer:
            raise Problem(409, "viewer.already_added", "このご使用場所は既に閲覧場所に追加されています。") from None
        if not done:
            status, code, title = _KEY_REFUSALS["redeemed"]
            raise Problem(status, code, title)
        return location

    async def viewing(self, caller: Caller) -> list[Location]:
        rights = await self.repo.rights_of_viewer(caller.account_id)
        return await self.repo.many([r.location_id for r in rights])

    async def view(self, caller: Caller, location_id: str) -> Location:
        """Read-only access: the owner, or a viewer whose right still exists (a deletion ends it at once)."""
        location = await self.repo.get(location_id)
        if location is None:
            raise location_not_found()
        if location.owner_id != caller.account_id and await self.repo.right(location_id, caller.account_id) is None:
            raise location_not_found()
        return location

    async def forget_account(self, tx: Tx, account_id: str) -> None:
        """Lifecycle purged the account: its viewer rights go, and so do the rights others had to its locations."""
        await self.repo.remove_account(tx, account_id)
