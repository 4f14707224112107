"""The services' internal APIs, declared once: request and reply bodies and a typed client per service.

A service answers with these types; the gateway decodes the answer into the same types (and returns them as its
public answer wherever the public shape is the internal one). One camelCase base, two strictnesses:

- ``Body`` (requests) refuses unknown fields: a misspelt field is a 400 naming it, at the gateway's edge and at
  the service's.
- ``Reply`` (answers) ignores unknown fields. The gateway and a service are deployed one after the other, so a
  service that adds a field to an answer must not make every gateway still running the previous contract fail
  with a decode error; the gateway simply does not pass the new field on until it knows it. That a service
  answers exactly its declared type is checked by ``tests/contracts/test_internal_contracts.py`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import msgspec

if TYPE_CHECKING:
    from kagi_shared.service_api import Caller


T = TypeVar("T")


class Body(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """A request body of an internal route (and of the gateway's route that forwards it unchanged)."""


class Reply(Body, forbid_unknown_fields=False):
    """An answer of an internal route: decoded tolerantly (see the module's docstring)."""


class Transport(Protocol):
    """How a client reaches a service (the gateway's ``Services``: pooled HTTP, timeouts, problem forwarding)."""

    async def send(self, service: str, method: str, path: str, *, caller: Caller | None = None,
                   body: bytes | None = None, params: Mapping[str, str] | None = None,
                   request_id: str | None = None, route: str | None = None, chained: bool = False) -> bytes:
        """The answer's body (empty for 204); a service problem is raised, never returned. ``route`` is the path's
        template (``/internal/accounts/{account_id}``): what metrics may name a call by, never the path itself.
        ``chained``: the route calls another service before it answers, so its caller waits longer (see
        ``HttpSettings.chained_service_timeout_s``)."""
        ...


class ServiceClient:
    """A typed client of one service: each method is one internal route."""

    service: ClassVar[str]

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def _send(self, method: str, route: str, *, caller: Caller | None = None, body: Any = None,
                    params: Mapping[str, str] | None = None, rid: str | None = None, chained: bool = False,
                    **values: str) -> bytes:
        """Send to ``route`` (a path template) with ``values`` filled in: the template goes along, so the call can
        be counted by its route without an id or a token becoming a metric label."""
        content = None if body is None else msgspec.json.encode(body)
        path = route.format_map(values) if values else route
        return await self.transport.send(self.service, method, path, caller=caller, body=content, params=params,
                                         request_id=rid, route=route, chained=chained)

    async def _call(self, reply: type[T], method: str, route: str, *, caller: Caller | None = None, body: Any = None,
                    params: Mapping[str, str] | None = None, rid: str | None = None, chained: bool = False,
                    **values: str) -> T:
        content = await self._send(method, route, caller=caller, body=body, params=params, rid=rid, chained=chained,
                                   **values)
        return msgspec.json.decode(content, type=reply)
