"""Routes that only forward: one typed client method, declared instead of written out as a handler.

Most public routes take the path's values and the body as they are, call one method of a service's typed client
(``kagi_shared.contracts``) with the caller and the request id, and answer with its reply unchanged. Such a route is
declared as ``keys = forward(get("/me/invitations", opt=..., summary=...), InviteClient.keys)`` in an
``ApiController``: the handler's parameters and answer type are the client method's own (a path value as
``FromPath``, ``data`` as ``JSONBody``), so the OpenAPI document, the role check and the pages (``forms.operate``)
see it exactly as they see a written handler of that name. A route that translates the reply, takes query
parameters with public limits or does anything else stays a written handler.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, get_type_hints

import msgspec
from litestar import Controller
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from kagi_gateway.deps import SESSIONS, Call
from kagi_shared.contracts.audit import AuditClient
from kagi_shared.contracts.invite import InviteClient
from kagi_shared.contracts.lifecycle import LifecycleClient
from kagi_shared.contracts.notify import NotifyClient
from kagi_shared.contracts.permissions import PermissionsClient
from kagi_shared.service_api import Caller

CLIENTS: tuple[type[Any], ...] = (LifecycleClient, InviteClient, PermissionsClient, NotifyClient, AuditClient)
"""Each has a field of ``Call`` named by its ``service``."""
FORWARDED = "__forwards__"


def forward(route: HTTPRouteHandler, method: Callable[..., Awaitable[Any]],
            public: type[msgspec.Struct] | None = None, *, ends_sessions: bool = False) -> HTTPRouteHandler:
    """``route`` (an unapplied ``get(...)``, ``post(...)``…) answered by the client ``method``: called with the
    caller when it takes one, the route's path values and body by name, and the request id. With ``public``, the
    route's body is that public type, passed on as the method's own body type with the client's address
    (``deps.from_client``: the service's rate limits count by it). ``ends_sessions``: the method ends every
    session of the caller's account, so its cached session version is dropped at once (the token is refused now,
    not after the cache)."""
    service = next(client.service for client in CLIENTS if vars(client).get(method.__name__) is method)
    hints = get_type_hints(method, localns={"Caller": Caller}, include_extras=True)
    names = [name for name in inspect.signature(method).parameters if name not in ("self", "caller", "rid")]
    with_caller = "caller" in inspect.signature(method).parameters
    internal: Any = hints.get("data")
    path_names = {part[1:].split(":")[0] for path in route.paths for part in path.split("/") if part.startswith("{")}
    assert set(names) - {"data"} <= path_names, f"{method.__qualname__}: {names} are not all in {route.paths}"

    async def handler(self: Any, call: Call, **values: Any) -> Any:
        bound = getattr(getattr(call, service), method.__name__)
        args = [call.from_client(internal, values[name]) if public and name == "data" else values[name]
                for name in names]
        reply = await (bound(call.caller, *args, rid=call.rid) if with_caller else bound(*args, rid=call.rid))
        if ends_sessions:
            SESSIONS.forget(call.caller.account_id)
        return reply

    kinds = inspect.Parameter.POSITIONAL_OR_KEYWORD
    body: Any = JSONBody  # subscripted with types known only here, at run time
    path: Any = FromPath
    parameters = [inspect.Parameter("self", kinds)]
    parameters += [inspect.Parameter(name, kinds, annotation=body[public or hints[name]] if name == "data"
                                     else path[hints[name]])
                   for name in names]
    parameters.append(inspect.Parameter("call", kinds, annotation=NamedDependency[Call]))
    handler.__signature__ = inspect.Signature(parameters, return_annotation=hints["return"])  # type: ignore[attr-defined]
    handler.__annotations__ = {p.name: p.annotation for p in parameters[1:]} | {"return": hints["return"]}
    handler.__doc__ = None
    setattr(handler, FORWARDED, method)
    return route(handler)


class ApiController(Controller):
    """A controller whose ``forward`` routes are named after their attribute, as a written handler is after its
    ``def`` (the name is part of the route's OpenAPI operation id)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            if isinstance(value, HTTPRouteHandler) and hasattr(value.fn, FORWARDED):
                value.fn.__name__ = name
                value.fn.__qualname__ = f"{cls.__qualname__}.{name}"
                value.fn.__module__ = cls.__module__
