"""Admin contact addresses and info-sharing-site update notices (seed consignment guide 7-3).

Every change and the mail it causes are written in one transaction: the delivery row is the
notify service's own, so registering an address and queueing its confirmation mail either
both happen or neither does.
"""

from __future__ import annotations

import uuid

from kagi_notify.adapters.repository import AdminContactRepository
from kagi_notify.domain import admin_contacts as domain
from kagi_notify.domain.admin_contacts import AdminContact, ContactExists
from kagi_notify.domain.deliveries import address_problem
from kagi_notify.service.deliveries import NotifyService
from kagi_shared.clock import Clock, utc_now
from kagi_shared.jst import jp_deadline, jp_slash_date
from kagi_shared.logging import get_logger
from kagi_shared.mongo import Store, Tx
from kagi_shared.problems import FieldError, Problem
from kagi_shared.settings import Settings

log = get_logger(__name__)

NOT_FOUND = Problem(404, "admin_contact.not_found", "指定された連絡先メールアドレスが見つかりません。")


class AdminContactService:
    def __init__(self, store: Store, contacts: AdminContactRepository, notify: NotifyService,
                 settings: Settings, *, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.store = store
        self.contacts = contacts
        self.notify = notify
        self.settings = settings

    def _pepper(self) -> str:
        return self.settings.security.code_pepper

    async def _send_link(self, tx: Tx, contact: AdminContact, token: str, correlation_id: str | None) -> None:
        assert contact.link_expires_at is not None
        await self.notify.record(
            tx, template="admin_contact_confirm", channel="mail", recipient=contact.email, category="admin",
            variables={"confirm_url": domain.confirm_url(self.settings.brand.portal_url, token),
                       "expires_at": jp_deadline(contact.link_expires_at)},
            correlation_id=correlation_id)

    async def register(self, email: str, company: str | None, correlation_id: str | None = None) -> AdminContact:
        """仮登録: a provisional address and its confirmation mail."""
        email = email.strip()
        problem = address_problem(email)
        if problem:
            raise Problem(400, "admin_contact.email_invalid", "メールアドレスの形式が正しくありません。",
                          errors=[FieldError("email", problem)])
        now = self.clock()
        token = domain.new_token()
        contact = AdminContact(id=str(uuid.uuid4()), email=email.lower(), company=company, created_at=now,
                               token_hash=domain.hash_token(token, self._pepper()), links_sent=1,
                               link_expires_at=domain.link_expiry(now, self.settings.notify.admin_link_ttl_days))

        async def work(tx: Tx) -> None:
            await self.contacts.add(tx, contact)
            await self._send_link(tx, contact, token, correlation_id)

        try:
            await self.store.transaction(work)
        except ContactExists:
            raise Problem(409, "admin_contact.exists", "このメールアドレスは既に登録されています。",
                          errors=[FieldError("email", "already registered")]) from None
        log.info("notify.admin_contact_registered", contact_id=contact.id)
        return contact

    async def resend(self, contact_id: str, correlation_id: str | None = None) -> AdminContact:
        """A fresh link for 7 more days; the previous link stops working."""
        contact = await self.contacts.get(contact_id)
        if contact is None:
            raise NOT_FOUND
        if contact.status != "provisional":
            raise Problem(409, "admin_contact.already_active", "このメールアドレスは本登録済みです。")
        now = self.clock()
        token = domain.new_token()
        contact.token_hash = domain.hash_token(token, self._pepper())
        contact.link_expires_at = domain.link_expiry(now, self.settings.notify.admin_link_ttl_days)
        contact.links_sent += 1

        async def work(tx: Tx) -> bool:
            changed = await self.contacts.update(
                tx, contact.id, {"status": "provisional"},
                {"token_hash": contact.token_hash, "link_expires_at": contact.link_expires_at,
                 "links_sent": contact.links_sent})
            if changed:
                await self._send_link(tx, contact, token, correlation_id)
            return changed

        if not await self.store.transaction(work):
            raise Problem(409, "admin_contact.already_active", "このメールアドレスは本登録済みです。")
        return contact

    async def confirm(self, token: str) -> AdminContact:
        """本登録: the link from the mail, once, within its 7 days."""
        token_hash = domain.hash_token(token, self._pepper())
        contact = await self.contacts.by_token_hash(token_hash)
        now = self.clock()
        verdict = domain.judge(contact, now)
        if verdict == "expired":
            raise Problem(410, "admin_contact.link_expired",
                          "認証期限が切れています。再送を希望される場合は、託送受付センターまでお申し出ください。")
        if verdict != "ok" or contact is None:
            raise Problem(404, "admin_contact.link_invalid", "この URL は無効です。")
        contact.status = "active"
        contact.confirmed_at = now

        async def work(tx: Tx) -> bool:
            return await self.contacts.update(
                tx, contact.id, {"status": "provisional", "token_hash": token_hash},
                {"status": "active", "confirmed_at": now}, unset=("token_hash", "link_expires_at"))

        if not await self.store.transaction(work):
            raise Problem(404, "admin_contact.link_invalid", "この URL は無効です。")
        contact.token_hash = None
        contact.link_expires_at = None
        log.info("notify.admin_contact_confirmed", contact_id=contact.id)
        return contact

    async def remove(self, contact_id: str) -> None:
        """抹消: an admin who left; their address gets no further notices."""

        async def work(tx: Tx) -> bool:
            return await self.contacts.remove(tx, contact_id)

        if not await self.store.transaction(work):
            raise NOT_FOUND

    async def all_contacts(self) -> list[AdminContact]:
        return await self.contacts.all()

    async def post_site_update(self, title: str, url: str, no_notice: bool, posted_by: str,
                               correlation_id: str | None = None) -> tuple[str, int]:
        """A new info-sharing-site article; its notice goes to every active address unless flagged no-notice."""
        now = self.clock()
        update_id = str(uuid.uuid4())

        async def work(tx: Tx) -> int:
            recipients = [] if no_notice else await self.contacts.active(tx)
            await self.contacts.record_site_update(tx, update_id, title, url, no_notice, now, posted_by,
                                                   len(recipients))
            for contact in recipients:
                await self.notify.record(
                    tx, str(uuid.uuid5(uuid.NAMESPACE_URL, f"kagi:info-site:{update_id}:{contact.id}")),
                    template="info_site_update", channel="mail", recipient=contact.email, category="admin",
                    variables={"title": title, "article_url": url, "posted_on": jp_slash_date(now)},
                    correlation_id=correlation_id)
            return len(recipients)

        notified = await self.store.transaction(work)
        log.info("notify.site_update_posted", update_id=update_id, notified=notified, no_notice=no_notice)
        return update_id, notified
