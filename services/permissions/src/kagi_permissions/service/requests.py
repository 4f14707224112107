"""Permission request use cases: file, search, accept/cancel, batch, acks, manual completion, retry."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from kagi_permissions.adapters.repository import Changes, Repository
from kagi_permissions.domain import requests as rules
from kagi_permissions.domain.calendar import BusinessCalendar
from kagi_permissions.domain.catalogue import REQUESTABLE
from kagi_permissions.domain.companies import Company, IdTaken, UserBusy
from kagi_permissions.domain.requests import KIND_LABELS, STATUS_LABELS, PermissionRequest, SystemStatus
from kagi_permissions.domain.timing import acceptance_date, batch_date, change_batch_date, effective_from_batch
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import new_envelope
from kagi_shared.events import notify as nev
from kagi_shared.events import permissions as ev
from kagi_shared.jst import JST
from kagi_shared.logging import get_logger
from kagi_shared.mongo import Store, Tx
from kagi_shared.notifications import request_notification
from kagi_shared.problems import FieldError, Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from kagi_shared.topics import PERMISSIONS_EVENTS

SOURCE = "kagi/permissions"
TAKEN = "既に登録されているIDです(英字の大文字と小文字は同一と見做されます)。"


def busy() -> Problem:
    return Problem(409, "request.user_busy", "この利用者には処理中の申請があります。完了してから申請してください。",
                   errors=[FieldError("userId", "処理中の申請があります。")])


log = get_logger(__name__)


def jst_today(now: datetime | None = None) -> date:
    return (now or utc_now()).astimezone(JST).date()


def grant_topic(system: str) -> str:
    return f"permissions.grants.{system.lower()}"


@dataclass
class RequestInput:
    kind: rules.Kind
    user_id: str
    permissions: dict[str, str | None] = field(default_factory=dict)
    name_kanji: str | None = None
    name_kana: str | None = None
    contractor: str | None = None
    memo: str = ""


@dataclass
class BatchResult:
    batch_date: date
    requests: int
    commands: int


class RequestService:
    def __init__(self, store: Store, repo: Repository, settings: Settings, calendar: BusinessCalendar,
                 juju: rules.JujuPolicy, *, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.store = store
        self.repo = repo
        self.settings = settings
        self.calendar = calendar
        self.juju = juju

    # -- helpers ---------------------------------------------------------------------------------
    async def company_of(self, caller: Caller) -> Company:
        company_id = await self.repo.admin_company(caller.login_id) or (
            await self.repo.admin_company(caller.email) if caller.email else None)
        company = await self.repo.company(company_id) if company_id else None
        if company is None or company.status != "active":
            raise Problem(403, "permissions.not_company_admin", "システム窓口責任者として登録されていません。")
        return company

    def publish(self, tx: Tx, event: Any, subject: str, correlation_id: str | None = None) -> None:
        tx.publish(PERMISSIONS_EVENTS.name, new_envelope(event, source=SOURCE, subject=subject,
                                                         correlation_id=correlation_id))

    def notify(self, tx: Tx, template: str, recipient: str, variables: dict[str, str],
               category: nev.Category = "admin") -> None:
        request_notification(tx, self.settings.security.notify_key, source=SOURCE, template=template,
                             recipient=recipient, variables=variables, category=category)

    def notify_status(self, tx: Tx, request: PermissionRequest, note: str = "") -> None:
        if request.origin not in ("admin", "review", "purge"):
            return
        self.notify(tx, "request_status_changed", request.filed_by, {
            "request_id": request.id, "request_kind": KIND_LABELS[request.kind], "user_id": request.user_id,
            "status": STATUS_LABELS[request.status], "note": note or "-"})

    def send(self, tx: Tx, request: PermissionRequest, status: SystemStatus, now: datetime) -> None:
        """Queue one grant command on the system's topic (through the outbox; key = user id)."""
        status.command_id = str(uuid.uuid4())
        status.attempts += 1
        status.state = "sent"
        status.sent_at = now
        status.reminded = False
        status.reason = None
        action: Literal["grant", "change", "revoke"] = (
            "revoke" if status.after is None else ("grant" if status.before is None else "change"))
        tx.publish(grant_topic(status.system), new_envelope(
            ev.GrantCommanded(command_id=status.command_id, request_id=request.id, company_id=request.company_id,
                              user_id=request.user_key, system=status.system, action=action, before=status.before,
                              after=status.after, effective_on=status.effective_on, attempt=status.attempts),
            source=SOURCE, subject=request.user_key, event_id=status.command_id))

    @staticmethod
    def _own_idle_id(current: dict[str, Any] | None, company: Company | str) -> bool:
        """An ID of this company that holds no system yet (an admin's own ID): a new request may use it."""
        company_id = company if isinstance(company, str) else company.id
        return current is not None and current.get("company_id") == company_id and \
            not any(current.get("permissions", {}).get(s) for s in REQUESTABLE)

    async def juju_places(self, company: Company) -> tuple[int, set[str]]:
        """The company's JUJU limit and the IDs counted against it: holders and open requests that add JUJU."""
        holders = await self.repo.juju_holders(company.id) | await self.repo.pending_juju_additions(company.id)
        return self.juju.limit_for(company.juju_max_users), holders

    # -- filing ----------------------------------------------------------------------------------
    async def submit(self, caller: Caller, data: RequestInput, correlation_id: str | None = None,
                     now: datetime | None = None) -> PermissionRequest:
        company = await self.company_of(caller)
        now = now or self.clock()
        request = await self.validate(company, data, caller.email or caller.login_id, now)
        return await self.file(request, correlation_id)

    async def validate(self, company: Company, data: RequestInput, filed_by: str, now: datetime,
                       origin: rules.Origin = "admin") -> PermissionRequest:
        errors: list[FieldError] = []
        user_id = data.user_id.strip()
        key = rules.user_key(user_id)
        for reason in rules.user_id_reasons(user_id):
            errors.append(FieldError("userId", reason))
        requested = {k.upper(): v for k, v in data.permissions.items()}
        after = rules.normalise_after(requested)
        if data.kind != "revoke":
            errors += rules.permission_errors(after, company.roles, bool(requested.get("PMS")),
                                              bool(requested.get("INFOSITE")))
        if data.contractor and data.contractor not in company.contractors:
            errors.append(FieldError("contractor", "委託先事業者として登録されていない事業者です。"))
        current = await self.repo.grant(key)
        before: dict[str, str | None] = {}
        if data.kind == "new":
            if not data.name_kanji:
                errors.append(FieldError("nameKanji", "利用者名(漢字)を入力してください。"))
            if not data.name_kana:
                errors.append(FieldError("nameKana", "利用者名(カナ)を入力してください。"))
            if key in self.settings.permissions.reserved_id_set():
                errors.append(FieldError("userId", "このIDは他システムで使用されているため登録できません。"))
            elif not any(e.field == "userId" for e in errors) and not self._own_idle_id(current, company) and (
                    current is not None or await self.repo.id_taken(key)):
                errors.append(FieldError("userId", TAKEN))
            if not any(after.values()) and not any(e.field.startswith("permissions") for e in errors):
                errors.append(FieldError("permissions", "いずれかのシステムの利用権限を指定してください。"))
        else:
            if current is None or current.get("company_id") != company.id or \
                    not any(current.get("permissions", {}).get(s) for s in REQUESTABLE):
                errors.append(FieldError("userId", "この事業者の利用者として利用権限が設定されていないIDです。"))
            else:
                before = {s: current["permissions"].get(s) for s in REQUESTABLE}
                if data.kind == "change" and not errors:
                    if after == before:
                        errors.append(FieldError("permissions", "申請後の利用権限が現在と同じです。"))
                    elif not any(after.values()):
                        errors.append(FieldError("permissions",
                                                 "すべての利用権限を外す場合は抹消申請を行ってください。"))
        if data.kind != "revoke" and after.get("JUJU") and not before.get("JUJU") and not errors:
            limit, holders = await self.juju_places(company)
            if self.juju.refuses(key, holders, company.juju_max_users):
                errors.append(FieldError("permissions.JUJU",
                                         f"JUJU の利用者は1事業者あたり{limit}名までです"
                                         "(超える場合は託送受付センターにご相談ください)。"))
        if errors:
            raise Problem(400, "request.invalid", "申請内容に誤りがあります。", errors=errors)
        if data.kind != "new" and await self.repo.open_request_for(key):
            raise busy()
        submitted_on = jst_today(now)
        systems = rules.plan(data.kind, before, after, submitted_on)
        request = PermissionRequest(
            id=str(uuid.uuid4()), company_id=company.id, kind=data.kind, user_id=user_id, user_key=key,
            name_kanji=data.name_kanji or (current or {}).get("name_kanji", ""),
            name_kana=data.name_kana or (current or {}).get("name_kana", ""),
            contractor=data.contractor if data.kind == "new" else (
                data.contractor or (current or {}).get("contractor")),
            memo=data.memo, filed_by=filed_by, origin=origin,
            status=rules.initial_status(data.kind, systems),
            submitted_at=now, submitted_on=submitted_on, systems=systems)
        if request.status == "accepted":
            batch = change_batch_date(self.calendar, submitted_on)
            rules.accept_by_system(request, batch, {s.system: effective_from_batch(self.calendar, batch, s.system)
                                                    for s in systems if s.timing == "batch"})
        return request

    async def file(self, request: PermissionRequest, correlation_id: str | None = None,
                   tx: Tx | None = None) -> PermissionRequest:
        async def work(tx: Tx) -> None:
            try:
                if request.kind != "new":
                    await self.repo.lock_user(tx, request.user_key, request.id)
                elif not self._own_idle_id(await self.repo.grant(request.user_key, tx), request.company_id):
                    await self.repo.reserve_id(tx, request.user_key, request.company_id, request.id)
            except (IdTaken, UserBusy):
                if request.kind != "new":
                    raise busy() from None
                raise Problem(400, "request.invalid", "申請内容に誤りがあります。",
                              errors=[FieldError("userId", TAKEN)]) from None
            for status in request.systems:
                if status.timing == "immediate":
                    self.send(tx, request, status, request.submitted_at)
            await self.repo.insert_request(tx, request)
            self.publish(tx, ev.RequestSubmitted(request_id=request.id, company_id=request.company_id,
                                                 kind=request.kind, user_id=request.user_id,
                                                 systems=[s.system for s in request.systems]),
                         request.id, correlation_id)
            if request.status == "accepted" and request.accepted_on and request.batch_date:
                self.publish(tx, ev.RequestAccepted(request_id=request.id, accepted_on=request.accepted_on,
                                                    batch_date=request.batch_date), request.id, correlation_id)

        if tx is not None:
            await work(tx)
        else:
            await self.store.transaction(work)
        return request

    # -- reading ---------------------------------------------------------------------------------
    async def search(self, caller: Caller, status: str | None = None, user_id: str | None = None,
                     company_id: str | None = None) -> list[PermissionRequest]:
        if not caller.has("operator"):
            company_id = (await self.company_of(caller)).id
        return await self.repo.search_requests(company_id=company_id, status=status,
                                               user_key=rules.user_key(user_id) if user_id else None)

    async def get(self, caller: Caller, request_id: str) -> PermissionRequest:
        request = await self.repo.request(request_id)
        if request is not None and not caller.has("operator"):
            company = await self.company_of(caller)
            if request.company_id != company.id:
                request = None
        if request is None:
            raise Problem(404, "request.not_found", "指定された申請が見つかりません。")
        return request

    # -- operator workflow -----------------------------------------------------------------------
    async def _load(self, tx: Tx, request_id: str) -> PermissionRequest:
        request = await self.repo.request(request_id, tx)
        if request is None:
            raise Problem(404, "request.not_found", "指定された申請が見つかりません。")
        return request

    async def accept(self, request_id: str, now: datetime | None = None) -> PermissionRequest:
        now = now or self.clock()

        async def work(tx: Tx) -> PermissionRequest:
            request = await self._load(tx, request_id)
            accepted_on = acceptance_date(self.calendar, request.submitted_on, jst_today(now))
            batch = batch_date(self.calendar, accepted_on)
            rules.accept(request, accepted_on, batch)
            for status in request.systems:
                if status.timing == "batch":
                    status.effective_on = effective_from_batch(self.calendar, batch, status.system)
            await self.repo.save_request(tx, request)
            self.publish(tx, ev.RequestAccepted(request_id=request.id, accepted_on=accepted_on, batch_date=batch),
                         request.id)
            self.notify_status(tx, request, f"システム処理日 {batch.isoformat()}")
            return request

        return await self.store.transaction(work)

    async def cancel(self, request_id: str, reason: str) -> PermissionRequest:
        async def work(tx: Tx) -> PermissionRequest:
            request = await self._load(tx, request_id)
            rules.cancel(request, reason)
            if request.kind == "new":
                await self.repo.release_id(tx, request.user_key)
            await self.repo.unlock_user(tx, request.user_key, request.id)
            await self.repo.save_request(tx, request)
            self.publish(tx, ev.RequestCancelled(request_id=request.id, reason=reason), request.id)
            self.notify_status(tx, request, reason)
            return request

        return await self.store.transaction(work)

    async def run_batch(self, batch: date, now: datetime | None = None, chunk: int = 200) -> BatchResult:
        """Send the grant commands of every accepted request whose batch date has come."""
        now = now or self.clock()
        result = BatchResult(batch, 0, 0)
        while due := await self.repo.due_for_batch(batch):  # again: requests accepted while the run went on
            for start in range(0, len(due), chunk):
                ids = due[start:start + chunk]

                async def work(tx: Tx, ids: list[str] = ids) -> int:
                    sent = 0
                    changes = await self.repo.changes(tx)
                    # One read of the chunk inside the transaction (not one per request): those accepted meanwhile
                    # cancelled or already sent are left out. Sent in filing order, as read.
                    loaded = {r.id: r for r in await self.repo.requests_by_id(tx, ids, "accepted")}
                    for current in (loaded[i] for i in ids if i in loaded):
                        for status in current.systems:
                            if status.timing == "batch" and status.state == "waiting":
                                self.send(tx, current, status, now)
                                sent += 1
                        current.status = "in_progress"
                        if rules.settle(current):
                            changes.unlock_user(current.user_key, current.id)
                            self.publish(tx, ev.RequestCompleted(request_id=current.id, user_id=current.user_id),
                                         current.id)
                        changes.save(current)
                    await changes.flush(tx)
                    return sent

                result.commands += await self.store.transaction(work)
                result.requests += len(ids)
        return result

    async def complete_system(self, request_id: str, system: str, now: datetime | None = None) -> PermissionRequest:
        """The operator records a completion no ack reported (JUJU/LOACUS revokes, manual work)."""
        now = now or self.clock()

        async def work(tx: Tx) -> PermissionRequest:
            request = await self._load(tx, request_id)
            status = self._system(request, system)
            if request.status not in ("accepted", "in_progress") or (
                    status.timing == "batch" and status.state == "waiting"):
                raise Problem(409, "request.not_in_progress", "この申請はまだ処理中ではないため完了を記録できません。")
            if status.state == "applied":
                raise Problem(409, "request.system_done", f"{system} は既に完了しています。")
            changes = await self.repo.changes(tx, {request.user_key})
            self._applied(tx, changes, request, status, "operator", now)
            changes.save(request)
            await changes.flush(tx)
            return request

        return await self.store.transaction(work)

    async def retry(self, request_id: str, system: str, now: datetime | None = None) -> PermissionRequest:
        now = now or self.clock()

        async def work(tx: Tx) -> PermissionRequest:
            request = await self._load(tx, request_id)
            status = self._system(request, system)
            if status.state not in ("failed", "sent") or request.status in ("cancelled", "complete"):
                raise Problem(409, "request.not_retryable", f"{system} は再送できる状態ではありません。",
                              extra={"state": status.state})
            self.send(tx, request, status, now)
            await self.repo.save_request(tx, request)
            return request

        return await self.store.transaction(work)

    @staticmethod
    def _system(request: PermissionRequest, system: str) -> SystemStatus:
        status = request.system(system.upper())
        if status is None:
            raise Problem(404, "request.system_not_in_request", f"この申請に {system} の処理はありません。")
        return status

    def _applied(self, tx: Tx, changes: Changes, request: PermissionRequest, status: SystemStatus, by: str,
                 now: datetime) -> None:
        status.state = "applied"
        status.completed_at = now
        status.completed_by = by
        status.reason = None
        empty = changes.set_permission(request, status.system, status.after)
        self.publish(tx, ev.SystemCompleted(request_id=request.id, system=status.system,
                                            by="ack" if by == "ack" else "operator"), request.id)
        self.access_changed(tx, request.user_id, request.company_id, status.system, status.before, status.after,
                            changes.permissions_of(request.user_key))
        if rules.settle(request):
            if request.kind != "new":  # only change/revoke requests hold the user's lock (see ``file``)
                changes.unlock_user(request.user_key, request.id)
            if empty:
                changes.drop_user(request.user_key)
            self.publish(tx, ev.RequestCompleted(request_id=request.id, user_id=request.user_id), request.id)
            self.notify_status(tx, request)

    def access_changed(self, tx: Tx, user_id: str, company_id: str, system: str, before: str | None,
                       after: str | None, held: dict[str, str], reason: Literal["request", "company_terminated"]
                       = "request") -> None:
        """Tell lifecycle what the user holds now: a first grant enrols the ID (認証情報登録, seed 5-1 ⑤),
        nothing left disables it. Keyed by the user, so one user's changes arrive in order."""
        tx.publish(PERMISSIONS_EVENTS.name, new_envelope(
            ev.AccessChanged(user_id=user_id, company_id=company_id, system=system, before=before, after=after,
                             permissions=held, reason=reason),
            source=SOURCE, subject=rules.user_key(user_id)))

    # -- acks --------------------------------------------------------------------------------------
    async def handle_ack(self, envelope_id: str, ack: ev.GrantAcknowledged, tx: Tx) -> str:
        """Apply one ack in the inbox transaction. Duplicates, stale and early acks change nothing."""
        return (await self.handle_acks([(envelope_id, ack)], tx))[0]

    async def handle_acks(self, acks: Sequence[tuple[str, ev.GrantAcknowledged]], tx: Tx) -> list[str]:
        """Apply acks in order in one transaction: their requests and the users' grants read in one query each,
        every write sent in bulk. Several acks of one request act on the same loaded request, as one by one."""
        now = self.clock()
        requests = {r.id: r for r in await self.repo.requests_by_id(tx, sorted({a.request_id for _, a in acks}))}
        changes = await self.repo.changes(tx, {r.user_key for r in requests.values()})
        outcomes = [self._ack(tx, changes, envelope_id, ack, requests.get(ack.request_id), now)
                    for envelope_id, ack in acks]
        await changes.flush(tx)
        return outcomes

    def _ack(self, tx: Tx, changes: Changes, envelope_id: str, ack: ev.GrantAcknowledged,
             request: PermissionRequest | None, now: datetime) -> str:
        record = {"command_id": ack.command_id, "request_id": ack.request_id, "system": ack.system,
                  "outcome": ack.outcome, "reason": ack.reason, "at": now}
        if request is None:
            changes.stray_ack(envelope_id, record, "unknown_request")
            return "unknown_request"
        status = request.system(ack.system.upper())
        if status is None:
            changes.stray_ack(envelope_id, record, "unknown_system")
            return "unknown_system"
        if status.command_id != ack.command_id:
            changes.stray_ack(envelope_id, record, "not_the_current_command")
            return "not_the_current_command"
        if status.state == "applied":
            return "duplicate"
        if ack.outcome == "applied":
            self._applied(tx, changes, request, status, "ack", now)
        else:
            if status.state == "failed":
                return "duplicate"
            status.state = "failed"
            status.reason = ack.reason or "(理由なし)"
            self.publish(tx, ev.DeliveryFailed(request_id=request.id, system=status.system, reason=status.reason),
                         request.id)
        changes.save(request)
        return ack.outcome

    # -- purged IDs (seed 5-7: an auto-deleted ID still needs a revoke request) --------------------
    async def purged(self, tx: Tx, login_id: str, at: datetime) -> None:
        """Tell the company's admins and leave a prefilled revoke request they confirm with one call."""
        key = rules.user_key(login_id)
        grant = await self.repo.grant(key, tx)
        if grant is None or not any(grant.get("permissions", {}).get(s) for s in REQUESTABLE):
            return
        company = await self.repo.company(grant["company_id"], tx)
        if company is None or company.status != "active":
            return
        draft_id = f"purge:{key}"
        await self.repo.save_draft(tx, rules.RevokeDraft(id=draft_id, company_id=company.id, user_id=grant["user_id"],
                                                         purged_at=at, created_at=self.clock()))
        for admin in company.admins():
            self.notify(tx, "purged_id_revoke_needed", admin.email, {
                "user_id": grant["user_id"], "purged_on": at.astimezone(JST).strftime("%Y/%m/%d"),
                "draft_id": draft_id})

    async def confirm_draft(self, caller: Caller, draft_id: str) -> PermissionRequest:
        company = await self.company_of(caller)
        draft = await self.repo.draft(draft_id)
        if draft is None or draft.company_id != company.id:
            raise Problem(404, "draft.not_found", "指定された抹消申請の下書きが見つかりません。")
        if draft.status != "open":
            raise Problem(409, "draft.already_filed", "この抹消申請は既に提出済みです。",
                          extra={"requestId": draft.request_id})
        request = await self.validate(company, RequestInput(kind="revoke", user_id=draft.user_id,
                                                            memo="長期未使用IDの自動抹消に伴う抹消申請"),
                                      caller.email or caller.login_id, self.clock(), origin="purge")

        async def work(tx: Tx) -> PermissionRequest:
            await self.file(request, tx=tx)
            await self.repo.close_draft(tx, draft_id, request.id)
            return request

        return await self.store.transaction(work)

    async def tick(self, now: datetime | None = None) -> tuple[BatchResult, int]:
        """What the worker runs on its timer: the batch of today (Japan date) and the ack reminders."""
        now = now or self.clock()
        return await self.run_batch(jst_today(now), now), await self.remind_overdue(now)

    # -- reminders and the schedule --------------------------------------------------------------
    async def remind_overdue(self, now: datetime | None = None) -> int:
        now = now or self.clock()
        cutoff = now - timedelta(seconds=self.settings.permissions.ack_sla_s)
        reminded = 0
        for found in await self.repo.sent_before(cutoff):
            async def work(tx: Tx, request_id: str = found.id) -> int:
                request = await self._load(tx, request_id)
                count = 0
                for status in request.systems:
                    if status.state == "sent" and not status.reminded and status.sent_at and status.sent_at < cutoff:
                        status.reminded = True
                        count += 1
                        self.publish(tx, ev.AckOverdueFlagged(request_id=request.id, system=status.system,
                                                       command_id=status.command_id or "", sent_at=status.sent_at),
                                     request.id)
                await self.repo.save_request(tx, request)
                return count

            reminded += await self.store.transaction(work)
        return reminded

    async def deliveries(self, state: str) -> list[dict[str, Any]]:
        """The operator's view of failed or overdue deliveries."""
        cutoff = self.clock() - timedelta(seconds=self.settings.permissions.ack_sla_s)
        wanted = "failed" if state == "failed" else "sent"
        found = await self.repo.open_with_delivery(wanted, None if state == "failed" else cutoff)
        rows = []
        for request in found:
            for status in request.systems:
                overdue = status.sent_at is not None and status.sent_at < cutoff
                if status.state == wanted and (state == "failed" or overdue):
                    rows.append({"requestId": request.id, "companyId": request.company_id, "userId": request.user_id,
                                 "system": status.system, "state": status.state, "reason": status.reason,
                                 "attempts": status.attempts, "sentAt": status.sent_at})
        return rows


class RequestsUseCase:
    """A use case over the company's requests (company registration, access review): it files what it changes
    through ``RequestService`` and reads the same repository."""

    def __init__(self, store: Store, repo: Repository, requests: RequestService, *, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.store = store
        self.repo = repo
        self.requests = requests
