"""Helpers for end-to-end tests: accounts, logins and the mailbox of the embedded SMTP sink."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pyotp
import pytest

from kagi_cli.mailbox import Mail, mailbox
from kagi_shared.settings import Settings


@dataclass
class User:
    login_id: str
    password: str
    token: str
    totp_secret: str | None = None
    totp_step: int = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def totp(self) -> str:
        """The authenticator app's code for a later step than any used (the server refuses a code twice)."""
        assert self.totp_secret is not None
        while True:
            now = time.time()
            now_step = int(now) // 30
            # The previous step's code is good only until this step ends: not in its last seconds (a slow request
            # would reach the server in the next step, which refuses it).
            oldest = now_step - 1 if now % 30 < 25 else now_step
            step = max(self.totp_step + 1, oldest)
            if step <= now_step + 1:  # the server accepts one step of clock drift either way
                self.totp_step = step
                return str(pyotp.TOTP(self.totp_secret).at(step * 30))
            await asyncio.sleep(1)


PRIVILEGED = {"operator", "company_admin", "support"}


@pytest.fixture
async def gateway(system: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system, timeout=15) as client:
        yield client


async def internal_account(settings: Settings, roles: list[str], prefix: str = "user") -> tuple[str, str]:
    """Register an account through lifecycle's internal API (as operator tooling does): its login ID and
    password, not logged in."""
    login_id = f"{prefix}-{uuid.uuid4().hex[:10]}@example.jp"
    password = "Kagi-e2e-2026!"  # noqa: S105 - a test account
    async with httpx.AsyncClient(base_url=settings.service_url("lifecycle"), timeout=15,
                                 headers={"x-internal-token": settings.security.internal_token}) as lifecycle:
        created = await lifecycle.post("/internal/accounts",
                                       json={"loginId": login_id, "password": password, "roles": roles})
        assert created.status_code == 201, created.text
    return login_id, password


async def create_user(settings: Settings, gateway: httpx.AsyncClient, roles: list[str]) -> User:
    """An account registered through lifecycle's internal API, logged in (a privileged one enrols TOTP first)."""
    login_id, password = await internal_account(settings, roles)
    login = await gateway.post("/api/v1/auth/login", json={"loginId": login_id, "password": password})
    if not PRIVILEGED & set(roles):
        assert login.status_code == 200, login.text
        return User(login_id, password, login.json()["accessToken"])
    user = await enrol_totp(gateway, login_id, password, login)
    login = await gateway.post("/api/v1/auth/login",
                               json={"loginId": login_id, "password": password, "totpCode": await user.totp()})
    assert login.status_code == 200, login.text
    user.token = login.json()["accessToken"]
    return user


async def enrol_totp(gateway: httpx.AsyncClient, login_id: str, password: str, login: httpx.Response) -> User:
    """What a new operator does: the login answers with an enrolment-only token; set up the app, confirm a code."""
    assert (login.status_code, login.json()["code"]) == (403, "auth.totp_enrolment_required"), login.text
    restricted = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    setup = await gateway.post("/api/v1/me/totp", headers=restricted)
    assert setup.status_code == 201, setup.text
    user = User(login_id, password, "", totp_secret=setup.json()["secret"])
    confirmed = await gateway.post("/api/v1/me/totp/confirm", headers=restricted, json={"code": await user.totp()})
    assert confirmed.status_code == 204, confirmed.text
    return user


async def wait_for_mail(settings: Settings, to: str, count: int = 1, timeout_s: float = 120,
                        subject: str | None = None) -> list[Mail]:
    """The mails to ``to`` (only those whose subject holds ``subject``, if given) once ``count`` of them are in the
    sink. Other mails to the same person (a security notice of the account's own set-up) arrive in their own
    time: a test that waits for one particular mail names its subject rather than counting."""
    for _ in range(int(timeout_s * 10)):
        mails = [m for m in mailbox(settings.var_path / "mail")
                 if m.to == to and (subject is None or subject in m.subject)]
        if len(mails) >= count:
            return mails
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} mail(s) to {to}{f' about {subject}' if subject else ''}, got {len(mails)}")


def code_in(mail: Mail) -> str:
    match = re.search(r"認証コード: ([A-Z0-9]{12})", mail.body)
    assert match, mail.body
    return match.group(1)


async def step_up(settings: Settings, gateway: httpx.AsyncClient, auth: dict[str, str], address: str) -> None:
    """Verify a fresh step-up code in the session ``auth`` belongs to (the window is that session's only)."""
    def codes() -> list[Mail]:
        return [m for m in mailbox(settings.var_path / "mail") if m.to == address and "認証コード: " in m.body]

    before = len(codes())
    issued = await gateway.post("/api/v1/me/step-up", headers=auth)
    assert issued.status_code == 201, issued.text
    for _ in range(1200):
        mails = codes()
        if len(mails) > before:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"no step-up code mailed to {address}")
    verified = await gateway.post("/api/v1/me/step-up/verify", headers=auth, json={"code": code_in(mails[-1])})
    assert verified.status_code == 200, verified.text


async def age_password(settings: Settings, login_id: str, days: int) -> None:
    """Pretend the account's password was set ``days`` ago (lifecycle's own record of it)."""
    from datetime import UTC, datetime, timedelta

    from kagi_shared.mongo import database_name, make_client

    client = make_client(settings)
    try:
        await client[database_name(settings, "lifecycle")]["accounts"].update_one(
            {"login_id": login_id}, {"$set": {"password_changed_at": datetime.now(UTC) - timedelta(days=days)}})
    finally:
        await client.close()


async def company_with_admin(settings: Settings, gateway: httpx.AsyncClient) -> tuple[User, User]:
    """An operator, and a company admin of a company that operator registered (パートナーガス株式会社)."""
    operator = await create_user(settings, gateway, ["operator"])
    admin = await create_user(settings, gateway, ["company_admin"])
    company = await gateway.post("/api/v1/operator/companies", headers=operator.auth, json={
        "name": "パートナーガス株式会社", "roles": ["gas_retailer", "consignment_requester"],
        "primaryAdmin": {"name": "託送 太郎", "email": admin.login_id}, "contractors": ["委託先A株式会社"]})
    assert company.status_code == 201, company.text
    return operator, admin


async def water_contract_stored(settings: Settings, customer_number: str) -> None:
    """Wait until the invite worker stored a water contract published on contracts.upserted."""
    from kagi_shared.mongo import database_name, make_client

    client = make_client(settings)
    try:
        stored = client[database_name(settings, "invite")]["water_contracts"]
        for _ in range(300):
            if await stored.count_documents({"_id": customer_number}):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"contract {customer_number} never stored")
    finally:
        await client.close()
