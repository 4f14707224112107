"""Invitation use cases: keys for the owner, the invitee's link and two-phase redemption, the user list."""

from __future__ import annotations

import math
import re
import secrets
import uuid
from datetime import datetime, timedelta

import msgspec

from kagi_invite.domain.invitations import (
    KEY_LENGTH,
    AccountType,
    AlreadyMember,
    ConfirmationLink,
    CoUser,
    InvitationKey,
    InvitationPolicy,
    can_join,
    judge_key,
    judge_link,
    key_format_problem,
    retry_after_s,
)
from kagi_invite.domain.step_up import StepUpPolicy
from kagi_invite.service.outbox import publish_event, request_mail, request_removal_mails
from kagi_invite.service.ports import Invitations, StepUps
from kagi_invite.service.step_up import require_step_up
from kagi_shared import codes
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import invite as ev
from kagi_shared.jst import jp_datetime, jp_deadline
from kagi_shared.mongo import Transactions, Tx
from kagi_shared.problems import FieldError, Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings

EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")


def key_not_found() -> Problem:
    return Problem(404, "invitation.key_not_found", "指定された認証キーが見つかりません。")


def link_invalid() -> Problem:
    return Problem(404, "invitation.link_invalid",
                   "確認用URLが無効です。お手数ですが、メールアドレスの入力からやり直してください。")


_KEY_REFUSALS = {
    "expired": (410, "invitation.key_expired",
                "認証キーの有効期限が切れています。招待した方に再発行を依頼してください。"),
    "redeemed": (409, "invitation.key_used", "この認証キーは使用済みです。"),
    "revoked": (410, "invitation.key_revoked", "この認証キーは取り消されています。"),
    "voided": (410, "invitation.key_voided", "規定回数を超えて失敗したため、この認証キーは無効になりました。"),
    "busy": (409, "invitation.redeem_in_progress",
             "この認証キーは現在登録処理中です。しばらくしてから再度お試しください。"),
}
_LINK_REFUSALS = {
    "expired": (410, "invitation.link_expired",
                "確認用URLの有効期限が切れています。メールアドレスの入力からやり直してください。"),
    "used": (409, "invitation.link_used", "この確認用URLは使用済みです。"),
    "voided": (410, "invitation.link_voided",
               "誤った認証キーが規定回数入力されたため、この確認用URLは無効になりました。"),
    "busy": (409, "invitation.redeem_in_progress", "登録処理中です。しばらくしてから再度お試しください。"),
}



def _link_refused(verdict: str, reserved_until: datetime | None, now: datetime) -> Problem:
    status, code, title = _LINK_REFUSALS[verdict]
    if verdict != "busy" or reserved_until is None:
        return Problem(status, code, title)
    retry = max(1, math.ceil((reserved_until - now).total_seconds()))  # when the hold lapses
    return Problem(status, code, title, headers={"Retry-After": str(retry)}, extra={"retryAfterSeconds": retry})


class Reservation(msgspec.Struct, kw_only=True):
    reservation_id: str
    email: str
    owner_id: str
    key_id: str
    reserved_until: datetime


class IssuedKey(msgspec.Struct, kw_only=True):
    key: str
    record: InvitationKey


class Household(msgspec.Struct, kw_only=True):
    owner_id: str
    representative_account_id: str
    co_users: list[CoUser]


class InvitationService:
    def __init__(self, store: Transactions, repo: Invitations, step_ups: StepUps,
                 settings: Settings, policy: InvitationPolicy, step_up_policy: StepUpPolicy, *,
                 clock: Clock = utc_now) -> None:
        self.clock = clock
        self.store = store
        self.repo = repo
        self.step_ups = step_ups
        self.settings = settings
        self.policy = policy
        self.step_up_policy = step_up_policy

    # -- the owner ---------------------------------------------------------------------------------
    async def require_step_up(self, caller: Caller) -> None:
        """The user list and every key issue need a step-up verified within the window (15 min)."""
        await require_step_up(self.step_ups, self.step_up_policy, caller, self.clock())

    async def issue_key(self, caller: Caller, correlation_id: str | None = None) -> IssuedKey:
        await self.require_step_up(caller)
        pepper = self.settings.security.code_pepper
        now = self.clock()
        plain = codes.new_code(KEY_LENGTH)
        key = InvitationKey(id=str(uuid.uuid4()), owner_id=caller.account_id, key_hash=codes.hash_code(plain, pepper),
                            issued_at=now, expires_at=self.policy.key_expires_at(now))

        async def work(tx: Tx) -> None:
            await self.repo.add_key(tx, key, caller.login_id, caller.email)
            publish_event(tx, ev.KeyIssued(owner_id=caller.account_id, key_id=key.id, expires_at=key.expires_at),
                          caller.account_id, correlation_id)

        await self.store.transaction(work)
        return IssuedKey(key=plain, record=key)

    async def list_keys(self, caller: Caller) -> list[InvitationKey]:
        await self.require_step_up(caller)
        return await self.repo.keys_of_owner(caller.account_id)

    async def revoke_key(self, caller: Caller, key_id: str, correlation_id: str | None = None) -> InvitationKey:
        key = await self.repo.key_of_owner(caller.account_id, key_id)
        if key is None:
            raise key_not_found()  # another owner's key looks exactly like a missing one
        if judge_key(key, self.clock()) not in ("ok", "busy"):
            raise Problem(409, "invitation.key_not_pending", "未使用の認証キーのみ取り消すことができます。",
                          extra={"status": key.status})

        async def work(tx: Tx) -> bool:
            if not await self.repo.set_key_status(tx, key.id, "revoked", ("pending", "reserved")):
                return False
            publish_event(tx, ev.KeyRevoked(owner_id=caller.account_id, key_id=key.id), caller.account_id,
                          correlation_id)
            return True

        if not await self.store.transaction(work):
            raise Problem(409, "invitation.key_not_pending", "未使用の認証キーのみ取り消すことができます。")
        key.status = "revoked"
        return key

    # -- abuse limits ------------------------------------------------------------------------------
    def _bucket(self, action: str, kind: str, value: str) -> str:
        if kind == "email":  # limits must not keep the addresses of people who never signed up
            value = codes.hash_code(value.lower(), self.settings.security.code_pepper)
        return f"{action}:{kind}:{value}"

    async def forgive(self, action: str, kind: str, value: str | None) -> None:
        """Undo one hit counted by ``limit``: for limits on failures, counted up front and taken back on success
        (counting after the fact would let a burst of guesses through before the first failure is written)."""
        if value:
            await self.repo.forgive(self._bucket(action, kind, value))

    async def limit(self, action: str, kind: str, value: str | None, limit: int) -> None:
        if not value:
            return
        window = self.settings.invite.rate_window_s
        now = self.clock()
        start = now - timedelta(seconds=window)
        bucket = self._bucket(action, kind, value)
        count = await self.repo.hit(bucket, now, start)
        if count > limit:
            leaves = await self.repo.nth_hit(bucket, start, count - limit)
            retry = retry_after_s(leaves or now, window, now)
            raise Problem(429, "rate_limited",
                          "短時間に多くのリクエストがありました。しばらくしてから再度お試しください。",
                          headers={"Retry-After": str(retry)}, extra={"retryAfterSeconds": retry})

    # -- the invitee -------------------------------------------------------------------------------
    async def request_link(self, email: str, ip: str | None, correlation_id: str | None = None) -> ConfirmationLink:
        """Mail a confirmation link to any well-formed address: the answer never says whether it has an account."""
        email = email.strip()
        if len(email) > 254 or not EMAIL.match(email):
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。",
                          errors=[FieldError("email", "メールアドレスの形式で入力してください。")])
        limits = self.settings.invite
        await self.limit("request", "ip", ip, limits.request_per_ip)
        await self.limit("request", "email", email, limits.request_per_email)
        now = self.clock()
        token = secrets.token_hex(24)
        link = ConfirmationLink(id=str(uuid.uuid4()), email=email,
                                token_hash=codes.hash_code(token, self.settings.security.code_pepper), issued_at=now,
                                expires_at=self.policy.link_expires_at(now))
        url = f"{self.settings.brand.portal_url.rstrip('/')}/invitations/accept?token={token}"

        async def work(tx: Tx) -> None:
            await self.repo.add_link(tx, link)
            publish_event(tx, ev.InvitationRequested(link_id=link.id, expires_at=link.expires_at), link.id,
                          correlation_id)
            request_mail(tx, self.settings, "invitation_confirm", email,
                         {"url": url, "expires_at": jp_deadline(link.expires_at)}, correlation_id)

        await self.store.transaction(work)
        return link

    async def _link(self, token: str) -> ConfirmationLink:
        if not token or len(token) > 128:
            raise link_invalid()
        link = await self.repo.link_by_hash(codes.hash_code(token, self.settings.security.code_pepper))
        if link is None:
            raise link_invalid()
        return link

    async def check_link(self, token: str, ip: str | None) -> ConfirmationLink:
        await self.limit("redeem", "ip", ip, self.settings.invite.redeem_per_ip)
        link = await self._link(token)
        verdict = judge_link(link, self.clock())
        if verdict not in ("ok", "busy"):
            status, code, title = _LINK_REFUSALS[verdict]
            raise Problem(status, code, title)
        return link

    async def reserve(self, token: str, typed_key: str, ip: str | None,
                      correlation_id: str | None = None) -> Reservation:
        """Phase one of a redemption: hold the key and the link for a short time, or say exactly why not."""
        limits = self.settings.invite
        await self.limit("redeem", "ip", ip, limits.redeem_per_ip)
        link = await self._link(token)
        now = self.clock()
        link_verdict = judge_link(link, now)
        if link_verdict != "ok":
            # Judged before the per-address limit: an answer that judged no key is no guess. An invitee whose
            # attempt was cut off (a gateway restart) retries "in progress" until the hold lapses, and must
            # still have their attempts then.
            raise _link_refused(link_verdict, link.reserved_until, now)
        await self.limit("redeem", "email", link.email, limits.redeem_per_email)
        if problem := key_format_problem(typed_key):
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=[FieldError("key", problem)])
        wrong = await self.repo.claim_key_guess(link.id, self.policy.link_max_wrong_keys)
        if wrong is None:
            status, code, title = _LINK_REFUSALS["voided"]
            raise Problem(status, code, title)
        key = await self.repo.key_by_hash(codes.hash_code(typed_key, self.settings.security.code_pepper))
        if key is None:
            await self._wrong_key(link, wrong, correlation_id)
        assert key is not None
        await self.repo.give_back_key_guess(link.id)
        key_verdict = judge_key(key, now)
        if key_verdict != "ok":
            status, code, title = _KEY_REFUSALS[key_verdict]
            raise Problem(status, code, title)

        reservation_id = str(uuid.uuid4())
        until = self.policy.reserved_until(now)

        async def work(tx: Tx) -> str | None:
            if not await self.repo.reserve_key(tx, key.id, reservation_id, until, now):
                return "key"
            if not await self.repo.reserve_link(tx, link.id, reservation_id, until, now):
                raise _Lost("link")  # abort: the key stays as it was
            return None

        try:
            lost = await self.store.transaction(work)
        except _Lost as exc:
            lost = exc.what
        if lost == "key":
            fresh = await self.repo.key_of_owner(key.owner_id, key.id)
            verdict = judge_key(fresh, self.clock()) if fresh else "redeemed"
            status, code, title = _KEY_REFUSALS[verdict if verdict != "ok" else "busy"]
            raise Problem(status, code, title)
        if lost == "link":
            raise _link_refused("busy", until, now)
        # The per-address limit is on failures: the right key is none. (An invitee whose account creation then
        # fails for want of a service retries as often as the outage lasts; a wrong password on redemption
        # is counted against the key instead.)
        await self.forgive("redeem", "email", link.email)
        return Reservation(reservation_id=reservation_id, email=link.email, owner_id=key.owner_id, key_id=key.id,
                           reserved_until=until)

    async def _wrong_key(self, link: ConfirmationLink, wrong: int, correlation_id: str | None) -> None:
        """A wrong key, already counted (``wrong``); the last allowed one voids the link."""
        if self.policy.link_voided_by(wrong):
            async def void(tx: Tx) -> None:
                await self.repo.set_link_status(tx, link.id, "voided")

            await self.store.transaction(void)
        remaining = self.policy.wrong_keys_left(wrong)
        if remaining == 0:
            status, code, title = _LINK_REFUSALS["voided"]
            raise Problem(status, code, title)
        raise Problem(400, "invitation.key_wrong", "認証キーが正しくありません。",
                      extra={"remainingAttempts": remaining})

    async def release(self, reservation_id: str, failed_login: bool, correlation_id: str | None = None) -> None:
        """Give a held key back; a failed login on redemption counts against the key (5 void it)."""

        async def work(tx: Tx) -> tuple[int, bool]:
            key = await self.repo.release_key(tx, reservation_id, failed_login)
            if key is None:
                return 0, False
            await self.repo.finish_link(tx, reservation_id, "active")
            attempts = key.attempts
            voided = failed_login and self.policy.key_voided_by(attempts)
            if voided:
                await self.repo.set_key_status(tx, key.id, "voided", ("pending",))
                publish_event(tx, ev.KeyVoided(owner_id=key.owner_id, key_id=key.id, attempts=attempts),
                              key.owner_id, correlation_id)
            return attempts, voided

        attempts, voided = await self.store.transaction(work)
        if not failed_login:
            return
        if voided:
            status, code, title = _KEY_REFUSALS["voided"]
            raise Problem(status, code, title)
        raise Problem(401, "invitation.login_failed", "ID またはパスワードが正しくありません。",
                      extra={"remainingAttempts": max(self.policy.key_max_attempts - attempts, 0)})

    async def complete(self, reservation_id: str, account_id: str, login_id: str, email: str, new_account: bool,
                       correlation_id: str | None = None, account_type: AccountType = "email_id") -> CoUser:
        """Phase two: the account exists (new or logged in); make it the owner's co-user, once."""
        key = await self.repo.key_by_reservation(reservation_id)
        if key is None:
            raise Problem(409, "invitation.reservation_lost",
                          "登録処理の有効時間が過ぎました。お手数ですが、もう一度お試しください。")
        already = await self.repo.co_user(key.owner_id, account_id) is not None
        verdict = can_join(key.owner_id, account_id, already)
        if verdict != "ok":
            await self.release(reservation_id, failed_login=False, correlation_id=correlation_id)
            if verdict == "own_key":
                raise Problem(409, "invitation.own_key", "ご自身が発行した認証キーは使用できません。")
            raise Problem(409, "invitation.already_member", "このアカウントは既に利用者として登録されています。")
        now = self.clock()
        owner_login_id, owner_email = await self.repo.owner_contact(key.id)
        co_user = CoUser(owner_id=key.owner_id, owner_login_id=owner_login_id, account_id=account_id,
                         login_id=login_id, email=email or login_id, account_type=account_type, key_id=key.id,
                         added_at=now)

        async def work(tx: Tx) -> bool:
            if not await self.repo.redeem_key(tx, reservation_id, account_id, login_id, now):
                return False
            await self.repo.finish_link(tx, reservation_id, "used")
            await self.repo.add_co_user(tx, co_user)
            publish_event(tx, ev.KeyRedeemed(owner_id=key.owner_id, key_id=key.id, account_id=account_id,
                                             account_type=co_user.account_type, new_account=new_account),
                          key.owner_id, correlation_id)
            variables = {"owner_login_id": owner_login_id, "user_login_id": login_id, "added_at": jp_datetime(now)}
            request_mail(tx, self.settings, "co_user_added", owner_email, variables, correlation_id, key.owner_id)
            request_mail(tx, self.settings, "co_user_added", co_user.email, variables, correlation_id, account_id)
            return True

        try:
            done = await self.store.transaction(work)
        except AlreadyMember:
            await self.release(reservation_id, failed_login=False, correlation_id=correlation_id)
            raise Problem(409, "invitation.already_member",
                          "このアカウントは既に利用者として登録されています。") from None
        if not done:
            raise Problem(409, "invitation.reservation_lost",
                          "登録処理の有効時間が過ぎました。お手数ですが、もう一度お試しください。")
        return co_user

    # -- the user list (利用者一覧) ----------------------------------------------------------------
    async def household(self, caller: Caller) -> Household:
        await self.require_step_up(caller)
        return Household(owner_id=caller.account_id,
                         representative_account_id=await self.repo.representative(caller.account_id),
                         co_users=await self.repo.co_users_of(caller.account_id))

    async def set_representative(self, caller: Caller, account_id: str, correlation_id: str | None = None) -> None:
        await self.require_step_up(caller)
        if account_id != caller.account_id and await self.repo.co_user(caller.account_id, account_id) is None:
            raise Problem(404, "users.not_found", "指定された利用者が見つかりません。")

        async def work(tx: Tx) -> None:
            await self.repo.set_representative(tx, caller.account_id, account_id)
            publish_event(tx, ev.RepresentativeChanged(owner_id=caller.account_id, account_id=account_id),
                          caller.account_id, correlation_id)

        await self.store.transaction(work)

    async def remove_co_user(self, caller: Caller, account_id: str, correlation_id: str | None = None) -> None:
        await self.require_step_up(caller)
        if account_id == caller.account_id:
            raise Problem(409, "users.cannot_remove_owner", "ご自身を利用者一覧から削除することはできません。")
        co_user = await self.repo.co_user(caller.account_id, account_id)
        if co_user is None:
            raise Problem(404, "users.not_found", "指定された利用者が見つかりません。")
        now = self.clock()

        async def work(tx: Tx) -> bool:
            if not await self.repo.remove_co_user(tx, caller.account_id, account_id):
                return False
            if await self.repo.representative(caller.account_id, tx) == account_id:
                await self.repo.set_representative(tx, caller.account_id, caller.account_id)
            publish_event(tx, ev.CoUserRemoved(owner_id=caller.account_id, account_id=account_id),
                          caller.account_id, correlation_id)
            request_removal_mails(tx, self.settings, "co_user_removed", co_user.email, account_id, caller,
                                  {"owner_login_id": caller.login_id, "user_login_id": co_user.login_id}, now,
                                  correlation_id)
            return True

        if not await self.store.transaction(work):
            raise Problem(404, "users.not_found", "指定された利用者が見つかりません。")

    async def memberships(self, caller: Caller) -> list[CoUser]:
        """Whose account the caller may use as a co-user; a removal shows here at once."""
        return await self.repo.memberships(caller.account_id)


class _Lost(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
