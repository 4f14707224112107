"""Session lifetime and the lifecycle rate limiter against the real database (issue 15 finding 11)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lifecycle_helpers import PASSWORD, make_lifecycle

from kagi_shared.problems import Problem
from kagi_shared.settings import Settings


async def test_rotation_never_carries_a_session_past_its_absolute_lifetime(settings: Settings,
                                                                           store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    account = await lc.service.create_account("abs-life@example.jp", PASSWORD, ["owner"])
    token, _, family = await lc.sessions.open(await lc.service.login("abs-life@example.jp", PASSWORD))
    absolute_h = settings.security.refresh_absolute_ttl_s / 3600
    step_h = settings.security.refresh_token_ttl_s / 3600 * 0.9  # each refresh well inside the sliding window
    elapsed = 0.0
    while elapsed + step_h < absolute_h:
        clock.advance(hours=step_h)
        elapsed += step_h
        refreshed, token, expires, same = await lc.sessions.refresh(token)
        assert refreshed.id == account.id and same == family
        assert expires.timestamp() <= clock.at.timestamp() + (absolute_h - elapsed) * 3600 + 1
    clock.advance(hours=absolute_h - elapsed + 0.01)
    with pytest.raises(Problem) as ended:
        await lc.sessions.refresh(token)
    assert ended.value.code == "auth.refresh_invalid"


async def test_a_burst_passes_the_rate_limit_no_more_than_its_limit(settings: Settings, store_factory: Any) -> None:
    """Issue 15 finding 11: the limiter counted before inserting, so every call of a burst saw the same old count."""
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    limit = settings.lifecycle.reset_per_login_id
    replies = await asyncio.gather(*(lc.credentials.request_reset("burst@example.jp", None)
                                     for _ in range(4 * limit)), return_exceptions=True)
    passed = [r for r in replies if r is None]
    refused = [r for r in replies if isinstance(r, Problem)]
    assert len(passed) + len(refused) == len(replies)
    assert 1 <= len(passed) <= limit
    assert {r.code for r in refused} == {"rate_limited"}
