"""A user's notification preferences: general notices (全体通知) on or off."""

from __future__ import annotations

from kagi_notify.adapters.repository import PreferenceRepository
from kagi_notify.domain.preferences import Preferences
from kagi_shared.clock import Clock, utc_now
from kagi_shared.service_api import Caller


class PreferenceService:
    def __init__(self, repo: PreferenceRepository, *, clock: Clock = utc_now) -> None:
        self.repo = repo
        self.clock = clock

    async def get(self, caller: Caller) -> Preferences:
        return await self.repo.get(caller.account_id) or Preferences(account_id=caller.account_id,
                                                                     email=caller.email or None)

    async def set_general(self, caller: Caller, general: bool) -> Preferences:
        prefs = Preferences(account_id=caller.account_id, general=general, email=caller.email or None,
                            updated_at=self.clock())
        await self.repo.put(None, prefs)
        return prefs
