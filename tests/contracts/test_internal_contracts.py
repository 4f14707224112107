"""The internal APIs answer exactly the types ``kagi_shared.contracts`` declares.

The gateway decodes a service's answer tolerantly (a field added by a service must not break a gateway still on the
previous contract), so nothing at run time would notice a service answering a field its contract lacks, or leaving
one out. Here every internal route is called through the typed clients against the running services, and each raw
answer must equal its decoded value encoded again: no field unknown to the contract, none missing, none of another
type. A route the scenario cannot reach is named with its reason, and a route added to a service without a client
call here fails the coverage check.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar, get_args, get_origin

import msgspec
import pyotp
from litestar import Litestar

from kagi_cli.invite import publish_contracts, sample_contracts, sample_water_contracts
from kagi_cli.mailbox import mailbox
from kagi_gateway.services import ForwardedProblem, Services
from kagi_shared.contracts import Body, Reply
from kagi_shared.contracts import invite as iv
from kagi_shared.contracts import lifecycle as lc
from kagi_shared.contracts import notify as nt
from kagi_shared.contracts import permissions as pm
from kagi_shared.contracts.audit import AuditClient
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings

T = TypeVar("T")
PASSWORD = "Contract-2026-kagi!"  # noqa: S105 - test accounts
NEW_PASSWORD = "Contract-2026-next!"  # noqa: S105
Route = tuple[str, str, str]  # service, method, path template

NOT_DRIVEN: dict[Route, str] = {
    ("permissions", "POST", "/internal/drafts/{draft_id:str}/confirm"):
        "a draft exists only after the inactivity sweep purges a permission holder",
    ("permissions", "POST", "/internal/requests/{request_id:str}/systems/{system:str}/retry"):
        "a retry needs a grant command the target system refused",
}
"""Routes this scenario cannot bring into the state they answer in; their declared reply is checked statically."""
UNTYPED: set[Route] = {("permissions", "GET", "/internal/catalogue"), ("audit", "GET", "/internal/audit")}
"""Answers declared as free JSON objects: the catalogue's matrices, and audit entries as each event recorded them."""


def service_apps() -> dict[str, Litestar]:
    from kagi_audit.entrypoints.api import create_app as audit_app
    from kagi_invite.entrypoints.api import create_app as invite_app
    from kagi_lifecycle.entrypoints.api import create_app as lifecycle_app
    from kagi_notify.entrypoints.api import create_app as notify_app
    from kagi_permissions.entrypoints.api import create_app as permissions_app
    from kagi_shared.settings import get_settings

    settings = get_settings()
    return {"lifecycle": lifecycle_app(settings), "invite": invite_app(settings),
            "permissions": permissions_app(settings), "notify": notify_app(settings), "audit": audit_app(settings)}


def internal_handlers() -> dict[Route, Any]:
    found = {}
    for service, app in service_apps().items():
        for route in app.routes:
            if not route.path.startswith("/internal/"):
                continue
            for handler in getattr(route, "route_handlers", []):
                for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                    found[(service, method, route.path)] = handler
    return found


def internal_routes() -> dict[Route, Any]:
    """Every internal route of every service, with its handler's declared answer."""
    return {route: handler.parsed_fn_signature.return_type.annotation
            for route, handler in internal_handlers().items()}


def template_of(routes: Mapping[Route, Any], service: str, method: str, path: str) -> Route:
    for candidate in routes:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", candidate[2])
        if candidate[:2] == (service, method) and re.fullmatch(pattern, path):
            return candidate
    raise AssertionError(f"no internal route {service} {method} {path}")


class Recorder:
    """The gateway's own transport, keeping every raw answer so it can be compared with what the client decoded."""

    def __init__(self, services: Services, routes: Mapping[Route, Any]) -> None:
        self.services = services
        self.routes = routes
        self.answers: list[tuple[Route, bytes]] = []
        self.checked: set[Route] = set()

    async def send(self, service: str, method: str, path: str, **kwargs: Any) -> bytes:
        content = await self.services.send(service, method, path, **kwargs)
        self.answers.append((template_of(self.routes, service, method, path), content))
        return content

    async def check(self, pending: Awaitable[T]) -> T:
        before = len(self.answers)
        try:
            value = await pending
        except ForwardedProblem as refused:
            raise AssertionError(f"refused: {refused.response.request.url} {refused.response.text}") from None
        assert len(self.answers) == before + 1
        route, content = self.answers[-1]
        sent = msgspec.json.decode(content) if content else None
        assert msgspec.to_builtins(value) == sent, f"{route}: the answer is not its contract type"
        self.checked.add(route)
        return value


def is_reply(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    return isinstance(annotation, type) and issubclass(annotation, Reply)


def test_every_internal_route_answers_a_contract_type() -> None:
    routes = internal_routes()
    assert len(routes) > 90
    wrong = {route: answer for route, answer in routes.items()
             if route not in UNTYPED and answer is not type(None) and not is_reply(answer)}
    assert wrong == {}
    assert set(NOT_DRIVEN) <= set(routes) and UNTYPED <= set(routes)


def test_every_internal_request_body_is_a_strict_contract_type() -> None:
    bodies = {route: handler.parsed_fn_signature.parameters["data"].annotation
              for route, handler in internal_handlers().items() if "data" in handler.parsed_fn_signature.parameters}
    assert len(bodies) > 40
    wrong = {route: body for route, body in bodies.items()
             if not (issubclass(body, Body) and body.__struct_config__.forbid_unknown_fields)}
    assert wrong == {}


async def latest(settings: Settings, to: str, pattern: str, seen: int = 0, where: str = "mail") -> str:
    """The first group of ``pattern`` in the newest message to ``to`` that has it, once there are more than
    ``seen`` such messages."""
    for _ in range(600):
        if where == "mail":
            bodies = [m.body for m in mailbox(settings.var_path / "mail") if m.to == to]
        else:
            from kagi_notify.adapters.sms import read_sms

            bodies = [s.body for s in read_sms(settings.var_path / "sms") if s.to.replace("-", "").endswith(to[1:])]
        found = [m.group(1) for body in bodies if (m := re.search(pattern, body))]
        if len(found) > seen:
            return found[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {where} to {to} matching {pattern}")


async def stored(settings: Settings, collection: str, key: str) -> None:
    """Wait until the invite worker stored what arrived on contracts.upserted."""
    from kagi_shared.mongo import database_name, make_client

    client = make_client(settings)
    try:
        for _ in range(300):
            if await client[database_name(settings, "invite")][collection].count_documents({"_id": key}):
                return
            await asyncio.sleep(0.1)
    finally:
        await client.close()
    raise AssertionError(f"{key} never stored")


async def until(attempt: Any, done: Any) -> Any:
    for _ in range(300):
        value = await attempt()
        if done(value):
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("the workers did not catch up")


async def test_every_internal_answer_round_trips_through_its_contract(system: str, settings: Settings) -> None:
    routes = internal_routes()
    services = Services(settings)
    rec = Recorder(services, routes)
    life, inv, perm, notify, audit = (lc.LifecycleClient(rec), iv.InviteClient(rec), pm.PermissionsClient(rec),
                                      nt.NotifyClient(rec), AuditClient(rec))
    tag = uuid.uuid4().hex[:8]
    operator = Caller(account_id=f"op-{tag}", login_id=f"contract-op-{tag}@example.jp", roles=("operator",))
    try:
        await drive_lifecycle(settings, rec, life, operator, tag)
        await drive_invite(settings, rec, inv, life, tag)
        await drive_permissions(rec, perm, operator, tag)
        await drive_notify(settings, rec, notify, operator, tag)
        await rec.check(audit.entries(operator, limit=5))
        await rec.check(audit.verify(operator))
    finally:
        await services.close()
    assert set(routes) - rec.checked == set(NOT_DRIVEN)


async def account(rec: Recorder, life: lc.LifecycleClient, name: str, roles: tuple[str, ...]) -> Caller:
    login_id = f"contract-{name}@example.jp"
    made = await rec.check(life.create_account(lc.CreateAccountIn(login_id=login_id, password=PASSWORD,
                                                                  roles=list(roles), email=login_id)))
    return Caller(account_id=made.account_id, login_id=login_id, email=login_id, roles=roles,
                  session_id=f"contract-session-{name}")


async def drive_lifecycle(settings: Settings, rec: Recorder, life: lc.LifecycleClient, operator: Caller,
                          tag: str) -> None:
    owner = await account(rec, life, f"owner-{tag}", ("owner",))
    sign_in = lc.LoginIn(login_id=owner.login_id, password=PASSWORD)
    await rec.check(life.login(sign_in))
    opened = await rec.check(life.open_session(sign_in))
    refreshed = await rec.check(life.refresh_session(lc.RefreshIn(refresh_token=opened.refresh_token)))
    await rec.check(life.account(owner.account_id))
    await rec.check(life.session(owner.account_id))
    setup = await rec.check(life.totp_setup(owner))
    await rec.check(life.totp_confirm(owner, lc.TotpConfirmIn(code=pyotp.TOTP(setup.secret).now())))
    await rec.check(life.change_password(owner, lc.PasswordChangeIn(current_password=PASSWORD,
                                                                    new_password=NEW_PASSWORD)))
    await rec.check(life.logout(owner, lc.LogoutIn(refresh_token=refreshed.refresh_token)))

    # Password reset by link, and by link and secret answer.
    plain = await account(rec, life, f"reset-{tag}", ("owner",))
    await rec.check(life.request_reset(lc.ResetRequestIn(login_id=plain.login_id)))
    token = await latest(settings, plain.login_id, r"token=([\w-]+)")
    await rec.check(life.complete_reset(lc.ResetCompleteIn(token=token, new_password=NEW_PASSWORD)))
    asked = await account(rec, life, f"question-{tag}", ("owner",))
    await rec.check(life.set_secret_question(asked, lc.SecretQuestionIn(
        question="最初に飼ったペットの名前は？", answer="ぽち", current_password=PASSWORD)))
    await rec.check(life.reset_question(lc.QuestionRequestIn(login_id=asked.login_id)))
    await rec.check(life.request_reset(lc.ResetRequestIn(login_id=asked.login_id)))
    token = await latest(settings, asked.login_id, r"token=([\w-]+)")
    await rec.check(life.reset_answer(lc.AnswerIn(token=token, answer="ぽち", new_password=NEW_PASSWORD)))

    # Self-registration by a verified address.
    email = f"contract-register-{tag}@example.jp"
    await rec.check(life.request_registration(lc.RegistrationIn(email=email)))
    token = await latest(settings, email, r"/register\?token=([\w-]+)")
    await rec.check(life.check_registration(lc.RegistrationTokenIn(token=token)))
    await rec.check(life.complete_registration(lc.RegistrationCompleteIn(token=token, password=PASSWORD)))

    # A B2B ID's enrolment, re-issued by support.
    from kagi_cli.accounts import create as create_staff

    staff_email = f"contract-support-{tag}@example.jp"
    staff_id, _, _ = await create_staff(settings, staff_email, "契約 検証", "support")
    otp, url = r"ワンタイムパスワード: ([A-Z0-9]{12})", r"/registration/(\S+)"
    await latest(settings, staff_email, otp)
    await latest(settings, staff_email, url)
    await rec.check(life.reissue_enrolment(operator, staff_id))
    url_token = await latest(settings, staff_email, url, seen=1)
    one_time = await latest(settings, staff_email, otp, seen=1)
    await rec.check(life.check_enrolment(lc.EnrolmentCheckIn(token=url_token)))
    await rec.check(life.complete_enrolment(lc.EnrolmentCompleteIn(token=url_token, one_time_password=one_time,
                                                                    password=PASSWORD)))

    # Unlock requests: approved, then rejected; the ladder's preview.
    locked = await account(rec, life, f"locked-{tag}", ("owner",))
    for decide in (life.approve_unlock, life.reject_unlock):
        await rec.check(life.lock(operator, locked.account_id))
        await rec.check(life.file_unlock(lc.UnlockFileIn(login_id=locked.login_id, message="解除をお願いします。")))
        pending = await rec.check(life.unlock_requests(operator, "pending"))
        mine = next(r for r in pending if r.account_id == locked.account_id)
        await rec.check(decide(operator, mine.request_id, lc.UnlockDecisionIn(note="本人確認済み")))
    await rec.check(life.preview(operator))

    # External IDs (SNS連携) and the login with one.
    linked = await account(rec, life, f"linked-{tag}", ("owner",))
    subject = f"subject-{tag}"
    await rec.check(life.link(linked, "google", lc.ExternalLinkIn(subject=subject)))
    await rec.check(life.external_session(lc.ExternalLoginIn(provider="google", subject=subject)))
    await rec.check(life.my_links(linked))
    await rec.check(life.links_of(linked.account_id, caller=operator))
    await rec.check(life.unlink(linked, "google"))
    # An invitee redeeming with an unknown external ID: a viewer account linked to it.
    await rec.check(life.invitee_account(lc.InviteeAccountIn(
        provider="google", subject=f"invitee-{tag}", login_id=f"contract-invitee-{tag}@example.jp",
        email=f"contract-invitee-{tag}@example.jp", roles=["viewer"])))

    # The OpenID Provider's client, code and signing keys.
    from tests.e2e.test_oidc_provider import REDIRECT, register_client

    client = await register_client(settings)
    await rec.check(life.oidc_client(client.client_id))
    await rec.check(life.signing_keys())
    verifier = "v" * 43
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    issued = await rec.check(life.issue_code(lc.CodeIn(
        client_id=client.client_id, account_id=linked.account_id, redirect_uri=REDIRECT,
        code_challenge=create_s256_code_challenge(verifier), scope="openid", auth_time=datetime.now(UTC),
        session_version=opened.account.session_version)))
    await rec.check(life.redeem_code(lc.CodeRedeemIn(client_id=client.client_id, client_secret=client.secret,
                                                     code=issued.code, redirect_uri=REDIRECT,
                                                     code_verifier=verifier)))


async def drive_invite(settings: Settings, rec: Recorder, inv: iv.InviteClient, life: lc.LifecycleClient,
                       tag: str) -> None:
    owner = await account(rec, life, f"inviter-{tag}", ("owner",))
    await rec.check(inv.issue_step_up(owner))
    code = await latest(settings, owner.login_id, r"認証コード: ([A-Z0-9]{12})")
    await rec.check(inv.verify_step_up(owner, iv.StepUpVerifyIn(code=code)))
    await rec.check(inv.step_up(owner))

    # Keys, the invitee's link, a redemption refused (the key given back) and one done; the user list.
    key = await rec.check(inv.issue_key(owner))
    spare = await rec.check(inv.issue_key(owner))
    await rec.check(inv.keys(owner))
    await rec.check(inv.revoke_key(owner, spare.key_id))
    guest = await account(rec, life, f"guest-{tag}", ("viewer",))
    await rec.check(inv.request_link(iv.LinkRequestIn(email=guest.login_id)))
    token = await latest(settings, guest.login_id, r"/invitations/accept\?token=([0-9a-f]+)")
    await rec.check(inv.check_link(iv.LinkTokenIn(token=token)))
    with contextlib.suppress(ForwardedProblem):  # a wrong password: refused, counted, the key free again
        await inv.redeem(iv.RedeemIn(token=token, key=key.key, account="existing", login_id=guest.login_id,
                                     password=NEW_PASSWORD))
    await rec.check(inv.redeem(iv.RedeemIn(token=token, key=key.key, account="existing", login_id=guest.login_id,
                                           password=PASSWORD)))
    await rec.check(inv.users(owner))
    await rec.check(inv.memberships(guest))
    await rec.check(inv.set_representative(owner, iv.RepresentativeIn(account_id=guest.account_id)))
    await rec.check(inv.remove_co_user(owner, guest.account_id))

    # Usage locations shared with a viewer key.
    await publish_contracts(settings, sample_contracts(owner.account_id, 2))
    await until(lambda: inv.locations(owner, "", 1, 10), lambda page: page.total == 2)
    page = await rec.check(inv.locations(owner, "", 1, 10))
    spn = page.items[0].location_id
    viewer_key = await rec.check(inv.issue_viewer_key(owner, spn))
    await rec.check(inv.add_viewing(guest, iv.AddViewingIn(key=viewer_key.key)))
    await rec.check(inv.viewing(guest))
    await rec.check(inv.location_data(guest, spn))
    await rec.check(inv.viewers(owner, spn))
    await rec.check(inv.remove_viewer(owner, spn, guest.account_id))

    # Water contract claims, SMS verification, withdrawal.
    waters = [msgspec.structs.replace(w, customer_number=f"W{tag.upper()}{i}")
              for i, w in enumerate(sample_water_contracts(2))]
    await publish_contracts(settings, waters)
    water = waters[0]
    proof = iv.ClaimIn(customer_number=water.customer_number, billing_number=water.billing_number, phone=water.phone)
    await stored(settings, "water_contracts", water.customer_number)
    await rec.check(inv.link_contract(owner, proof))
    await rec.check(inv.claims(owner))
    mobile = f"090{int(tag, 16) % 10**8:08d}"
    await rec.check(inv.registration(owner))
    await rec.check(inv.issue_sms(owner, iv.SmsIn(mobile=mobile)))
    sms = await latest(settings, mobile, r"認証コード: (\d{6})", where="sms")
    await rec.check(inv.verify_sms(owner, iv.SmsVerifyIn(code=sms)))
    await rec.check(inv.contract(owner, water.customer_number))
    await rec.check(inv.set_main(owner, iv.MainIn(customer_number=water.customer_number)))
    await rec.check(inv.unlink_contract(owner, water.customer_number))
    await rec.check(inv.withdraw(owner))


async def drive_permissions(rec: Recorder, perm: pm.PermissionsClient, operator: Caller, tag: str) -> None:
    await rec.check(perm.schedule("2026-12-28"))
    await rec.check(perm.catalogue(operator))
    await rec.check(perm.ip_allowlist())
    admin_email = f"contract-admin-{tag}@example.jp"
    admin = Caller(account_id=f"adm-{tag}", login_id=admin_email, email=admin_email, roles=("company_admin",))
    company = await rec.check(perm.register_company(operator, pm.CompanyIn(
        name=f"契約検証ガス{tag}", roles=["gas_retailer"], contractors=["委託先A株式会社"],
        primary_admin=pm.AdminIn(name="契約 太郎", email=admin_email))))
    await rec.check(perm.companies(operator))
    await rec.check(perm.company(operator, company.company_id))
    await rec.check(perm.change_company(operator, company.company_id,
                                        pm.CompanyChangeIn(contractors=["委託先A株式会社", "委託先B株式会社"])))
    await rec.check(perm.my_company(admin))
    await rec.check(perm.my_permissions(admin))

    user_id = f"contract-user-{tag}@example.jp"
    filed = await rec.check(perm.submit(admin, pm.RequestIn(
        kind="new", user_id=user_id, name_kanji="契約 花子", name_kana="ケイヤク ハナコ",
        permissions=pm.PermissionsIn(taxis="1011"))))
    await rec.check(perm.search(admin, user_id=user_id))
    await rec.check(perm.request(admin, filed.request_id))
    accepted = await rec.check(perm.accept(operator, filed.request_id))
    other = await perm.submit(admin, pm.RequestIn(kind="new", user_id=f"contract-other-{tag}@example.jp",
                                                  name_kanji="契約 次郎", name_kana="ケイヤク ジロウ",
                                                  permissions=pm.PermissionsIn(taxis="1010")))
    await rec.check(perm.cancel(operator, other.request_id, pm.CancelIn(reason="申請者からの取り下げ")))
    assert accepted.batch_date is not None
    await rec.check(perm.run_batch(operator, pm.BatchIn(batch_date=accepted.batch_date)))
    await rec.check(perm.complete(operator, filed.request_id, "TAXIS"))
    await rec.check(perm.deliveries(operator, "overdue"))
    await rec.check(perm.drafts(admin))

    # The access review over the user the request left with a permission.
    await rec.check(perm.users(admin))
    review = await rec.check(perm.start_review(admin))
    await rec.check(perm.reviews(admin))
    await rec.check(perm.review(admin, review.review_id))
    await rec.check(perm.decide(admin, review.review_id, pm.ReviewDecisionIn(user_id=user_id, decision="keep")))
    await rec.check(perm.report(admin, review.review_id))
    await rec.check(perm.terminate_company(operator, company.company_id))


async def drive_notify(settings: Settings, rec: Recorder, notify: nt.NotifyClient, operator: Caller,
                       tag: str) -> None:
    person = Caller(account_id=f"pref-{tag}", login_id=f"contract-pref-{tag}@example.jp", roles=("owner",))
    await rec.check(notify.preferences(person))
    await rec.check(notify.set_preferences(person, nt.NotificationPreferencesIn(receive_general_notices=False)))
    email = f"contract-contact-{tag}@example.jp"
    contact = await rec.check(notify.register_contact(operator, nt.AdminContactIn(email=email, company="契約検証ガス")))
    await rec.check(notify.admin_contacts(operator))
    await rec.check(notify.resend_link(operator, contact.contact_id))
    token = await latest(settings, email, r"/admin-contacts/confirm\?token=([A-Za-z0-9_\-]+)", seen=1)
    await rec.check(notify.confirm_contact(nt.AdminContactConfirmIn(token=token)))
    await rec.check(notify.post_update(operator, nt.SiteUpdateIn(title="契約の確認", url="https://example.jp/notice",
                                                                 no_notice=True)))
    await rec.check(notify.deliveries(operator, email))
    await rec.check(notify.remove_contact(operator, contact.contact_id))
