"""Events of the permissions service (topic ``permissions.events``, key: the request id)."""

from __future__ import annotations

from kagi_shared.events.envelope import Event, register


class CompanyRegistered(Event, frozen=True, tag="kagi.permissions.company_registered"):
    company_id: str
    name: str
    roles: list[str]


register(CompanyRegistered)
