"""TOTP enrolment of privileged accounts (issue 15 finding 4): hand out a seed, confirm it with a first code.

The seed is stored sealed (``SecretBox``), never hashed: the service must compute codes from it. Confirming
ends the account's sessions (the restricted enrolment token included) and is mailed to the account's address,
like every credential change.
"""

from __future__ import annotations

import msgspec

from kagi_lifecycle.domain import totp
from kagi_lifecycle.service.accounts import AccountService, AccountUseCase
from kagi_lifecycle.service.notices import send_mail
from kagi_shared.jst import jp_datetime
from kagi_shared.mongo import Tx
from kagi_shared.problems import FieldError, Problem

SESSION_ENDED = Problem(403, "auth.session_ended", "セッションが終了しました。再度ログインしてください。")


class Enrolment(msgspec.Struct, frozen=True, kw_only=True):
    secret: str
    otpauth_uri: str


class TotpService(AccountUseCase):
    def __init__(self, lifecycle: AccountService) -> None:
        super().__init__(lifecycle)
        self.box = lifecycle.totp_box

    async def setup(self, account_id: str) -> Enrolment:
        account = await self.accounts.get(account_id)
        if account is None or account.status != "active":
            raise SESSION_ENDED
        if account.totp_secret is not None:
            raise Problem(409, "totp.already_enrolled",
                          "2 段階認証 (ワンタイムパスワード) は登録済みです。変更は運用窓口にご依頼ください。")
        secret = totp.new_secret()

        async def work(tx: Tx) -> bool:
            return await self.accounts.update(tx, account.id, {"totp_pending": self.box.seal(secret, account.id)},
                                              when={"status": "active", "totp_secret": None})

        if not await self.store.transaction(work):
            raise SESSION_ENDED
        return Enrolment(secret=secret, otpauth_uri=totp.provisioning_uri(secret, account.login_id))

    async def confirm(self, account_id: str, code: str, correlation_id: str | None = None) -> None:
        account = await self.accounts.get(account_id)
        if account is None or account.status != "active":
            raise SESSION_ENDED
        if account.totp_pending is None:
            raise Problem(409, "totp.not_started", "先にワンタイムパスワードの登録を開始してください。")
        now = self.lifecycle.clock()
        step = totp.matching_step(self.box.open(account.totp_pending, account.id), code, now, 0)
        if step is None:
            raise Problem(400, "totp.code_wrong", "ワンタイムパスワードが正しくありません。",
                          errors=[FieldError("code", "認証アプリに表示されている 6 桁の数字を入力してください。")])

        async def work(tx: Tx) -> bool:
            done = await self.accounts.update(
                tx, account.id, {"totp_secret": account.totp_pending, "totp_pending": None, "totp_last_step": step},
                when={"status": "active", "totp_pending": account.totp_pending}, bump_session=True)
            if done:
                send_mail(tx, self.lifecycle.settings, "totp_enrolled", account.email,
                          {"login_id": account.login_id, "changed_at": jp_datetime(now),
                           "contact": self.lifecycle.settings.lifecycle.support_contact},
                          account_id=account.id, category="security", correlation_id=correlation_id)
            return done

        if not await self.store.transaction(work):
            raise SESSION_ENDED
