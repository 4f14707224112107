"""HTTP clients to the services' internal APIs, with timeouts; failures become problem+json."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
from litestar import Response

from kagi_shared import metrics
from kagi_shared.contracts.audit import AuditClient
from kagi_shared.contracts.invite import InviteClient
from kagi_shared.contracts.lifecycle import LifecycleClient
from kagi_shared.contracts.notify import NotifyClient
from kagi_shared.contracts.permissions import IpAllowlistOut, PermissionsClient
from kagi_shared.idempotency import HEADER as IDEMPOTENCY_KEY
from kagi_shared.idempotency import OUTGOING, REPLAYED_HEADER
from kagi_shared.metrics import INTERNAL_CALLS
from kagi_shared.problems import PROBLEM_JSON, service_timeout, service_unavailable
from kagi_shared.service_api import INTERNAL_TOKEN_HEADER, Caller, caller_headers
from kagi_shared.settings import Settings
from kagi_shared.tracing import inject

SERVICES = ("lifecycle", "invite", "permissions", "notify", "audit")
# RFC 3986 sub-delimiters and '@' ':' stay as they are (login IDs are email addresses); anything else is encoded.
_SEGMENT_SAFE = "@:!$&'()*+,;="


def internal_path(path: str) -> str:
    """The internal path with every value a caller put in it encoded: a control character, '?', '#' or '%' reaches
    the service as part of the same segment, and '.' or '..' can never climb to another internal route.
    (The gateway's router already keeps '/' out of a path parameter.)"""
    return "/".join(segment.replace(".", "%2E") if segment in (".", "..") else quote(segment, safe=_SEGMENT_SAFE)
                    for segment in path.split("/"))


def count_call(method: str, route: str) -> None:
    INTERNAL_CALLS.labels(metrics.process, method, route).inc()


class ServiceReply:
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.response = response

    def json(self) -> Any:
        return self.response.json()


class Services:
    def __init__(self, settings: Settings) -> None:
        timeout = httpx.Timeout(settings.http.service_timeout_s, connect=1.0)
        self.chained_timeout = httpx.Timeout(settings.http.chained_service_timeout_s, connect=1.0)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20,
                              keepalive_expiry=settings.http.client_keep_alive_s)
        # One more connect on a connect failure or timeout: the request was never sent, so even a POST is safe
        # to send again; a CPU-starved gateway can overrun the 1 s connect limit without the service being down.
        self.clients = {
            name: httpx.AsyncClient(base_url=settings.service_url(name), timeout=timeout,
                                    headers={INTERNAL_TOKEN_HEADER: settings.internal_token_for(name)},
                                    transport=httpx.AsyncHTTPTransport(retries=1, limits=limits))
            for name in SERVICES
        }
        self.allowlist_ttl = settings.edge.ip_allowlist_cache_s
        self._allowlist: tuple[float, frozenset[str]] = (0.0, frozenset())
        # One typed client per service (kagi_shared.contracts): each internal route is a method.
        self.lifecycle = LifecycleClient(self)
        self.invite = InviteClient(self)
        self.permissions = PermissionsClient(self)
        self.notify = NotifyClient(self)
        self.audit = AuditClient(self)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def send(self, service: str, method: str, path: str, *, caller: Caller | None = None,
                   body: bytes | None = None, params: Mapping[str, str] | None = None,
                   request_id: str | None = None, route: str | None = None, chained: bool = False) -> bytes:
        """Call a service and return its answer's body; a service problem is raised as the same problem. The call
        is counted by ``route``, the path's template; a path sent without one counts as ``untemplated``."""
        count_call(method, route or "untemplated")
        headers = inject(caller_headers(caller) if caller else {})
        if request_id:
            headers["x-request-id"] = request_id
        if body is not None:
            headers["content-type"] = "application/json"
        outgoing = OUTGOING.get() if method == "POST" else None
        if outgoing is not None:
            headers[IDEMPOTENCY_KEY] = outgoing.key
            if caller is None and outgoing.client_ip:
                headers["x-kagi-client-ip"] = outgoing.client_ip
        try:
            response = await self.clients[service].request(
                method, internal_path(path), content=body, params=dict(params) if params else None, headers=headers,
                timeout=self.chained_timeout if chained else httpx.USE_CLIENT_DEFAULT)
        except httpx.TimeoutException:
            raise service_timeout(service) from None
        except httpx.TransportError:
            raise service_unavailable(service) from None
        if response.status_code >= 400:
            raise ForwardedProblem(response)
        if outgoing is not None and response.headers.get(REPLAYED_HEADER) == "true":
            outgoing.replayed = True
        return response.content

    async def call(self, service: str, method: str, path: str, *, caller: Caller | None = None,
                   json: Any = None, params: dict[str, str] | None = None, request_id: str | None = None) -> Any:
        """Call a service and return its JSON, untyped (prefer the typed clients: ``services.invite`` …)."""
        content = await self.send(service, method, path, caller=caller,
                                  body=None if json is None else msgspec.json.encode(json), params=params,
                                  request_id=request_id)
        return msgspec.json.decode(content) if content else None

    async def ip_allowlist(self) -> frozenset[str]:
        """Static global addresses companies may use from abroad (permissions), cached briefly."""
        now = time.monotonic()
        if now < self._allowlist[0]:
            return self._allowlist[1]
        try:
            count_call("GET", "/internal/ip-allowlist")
            response = await self.clients["permissions"].get("/internal/ip-allowlist", timeout=2.0)
            addresses = (frozenset(msgspec.json.decode(response.content, type=IpAllowlistOut).addresses)
                         if response.status_code == 200 else frozenset())
        except (httpx.HTTPError, msgspec.DecodeError):
            addresses = self._allowlist[1]  # keep the last known list while permissions is unreachable
        self._allowlist = (now + self.allowlist_ttl, addresses)
        return addresses

    async def ready(self, service: str) -> bool:
        try:
            response = await self.clients[service].get("/ready", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200


class ForwardedProblem(Exception):
    """A service's own problem+json, passed to the client unchanged (status, code, fields)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"service answered {response.status_code}")
        self.response = response

    def to_response(self, public_path: str | None = None) -> Response[Any]:
        try:
            body = self.response.json()
        except ValueError:
            body = {"type": "about:blank", "title": "サービスエラー", "status": self.response.status_code,
                    "code": "service.error"}
        if public_path and "instance" in body:
            body = {**body, "instance": public_path}
        headers = {k: v for k, v in self.response.headers.items() if k.lower() in ("retry-after", "www-authenticate")}
        return Response(content=body, status_code=self.response.status_code, media_type=PROBLEM_JSON,
                        headers=headers)
