"""Helpers for end-to-end tests: accounts, logins and the mailbox of the embedded SMTP sink."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from kagi_cli.mailbox import Mail, mailbox
from kagi_shared.settings import Settings


@dataclass
class User:
    login_id: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def gateway(system: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system, timeout=15) as client:
        yield client


async def create_user(settings: Settings, gateway: httpx.AsyncClient, roles: list[str]) -> User:
    """Register an account through lifecycle's internal API (as operator tooling does) and log in."""
    login_id = f"user-{uuid.uuid4().hex[:10]}@example.jp"
    password = "Kagi-e2e-2026!"  # noqa: S105 - a test account
    async with httpx.AsyncClient(base_url=settings.service_url("lifecycle"), timeout=15,
                                 headers={"x-internal-token": settings.security.internal_token}) as lifecycle:
        created = await lifecycle.post("/internal/accounts",
                                       json={"loginId": login_id, "password": password, "roles": roles})
        assert created.status_code == 201, created.text
    login = await gateway.post("/api/v1/auth/login", json={"loginId": login_id, "password": password})
    assert login.status_code == 200, login.text
    return User(login_id, password, login.json()["accessToken"])


async def wait_for_mail(settings: Settings, to: str, count: int = 1, timeout_s: float = 120) -> list[Mail]:
    for _ in range(int(timeout_s * 10)):
        mails = [m for m in mailbox(settings.var_path / "mail") if m.to == to]
        if len(mails) >= count:
            return mails
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} mail(s) to {to}, got {len(mails)}")


def code_in(mail: Mail) -> str:
    match = re.search(r"認証コード: ([A-Z0-9]{12})", mail.body)
    assert match, mail.body
    return match.group(1)


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
