"""The browser tier: Debian's Chromium driven by Playwright against the whole system (the e2e ``system`` fixture).

One browser for the session, a fresh context (cookies, viewport) per test. A failed test leaves a screenshot and
the page's HTML in ``var/reports/browser/`` next to the test report, named after the test.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.e2e.conftest import gateway  # noqa: F401 - the e2e HTTP client fixture, for setting up accounts
from tests.e2e.test_federation import line  # noqa: F401 - the provider standing in for LINE (node, tools/test-idp)

CHROMIUM = "/usr/bin/chromium"  # Debian's package (make install); Playwright's own download is never used
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPORTS = Path(__file__).resolve().parents[2] / "var" / "reports" / "browser"
PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


async def new_page(browser: Browser, base_url: str, request: pytest.FixtureRequest,
                   viewport: dict[str, int] | None = None) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=base_url, locale="ja-JP", viewport=viewport or
                                        {"width": 1024, "height": 768})
    context.set_default_timeout(20_000)
    page = await context.new_page()
    try:
        yield page
    finally:
        reports = request.node.stash.get(_REPORTS, {})
        if any(r.failed for r in reports.values()) or "call" not in reports:
            await save_evidence(page, request.node.name)
        await context.close()


async def save_evidence(page: Page, name: str) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    stem = REPORTS / re.sub(r"[^\w.-]+", "_", name)
    try:
        await page.screenshot(path=f"{stem}.png", full_page=True)
        html, suffix = await page.content(), "html"
    except Exception as exc:  # evidence is best effort; the test's own failure is what matters
        html, suffix = f"no evidence: {exc}", "txt"
    await asyncio.to_thread(Path(f"{stem}.{suffix}").write_text, html, encoding="utf-8")


@pytest.fixture
async def page(browser: Browser, system: str, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    async for opened in new_page(browser, system, request):
        yield opened


@pytest.fixture
async def phone(browser: Browser, system: str, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A 375 × 812 phone screen."""
    async for opened in new_page(browser, system, request, PHONE):
        yield opened
