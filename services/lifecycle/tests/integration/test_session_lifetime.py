"""Refresh tokens rotate and slide, but a login's session has an absolute end (issue 15 finding 11)."""

from __future__ import annotations

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
