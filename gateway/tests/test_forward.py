"""A declared forwarding route (``forward``) answers as a written handler would: the path values and body reach the
client method with the caller and the request id, the reply is the answer, and the route is named by its attribute.

The services are a recording transport here (what the typed clients send is the thing checked); that the real
routes reach the real services is the end-to-end tier's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Litestar, Request, delete, get, post
from litestar.di import Provide
from litestar.testing import TestClient

from kagi_gateway.controllers.invitations import LinkCheckIn
from kagi_gateway.deps import SESSIONS, Call
from kagi_gateway.forward import ApiController, forward
from kagi_shared.contracts.audit import AuditClient
from kagi_shared.contracts.invite import InviteClient
from kagi_shared.contracts.lifecycle import LifecycleClient
from kagi_shared.contracts.notify import NotifyClient
from kagi_shared.contracts.permissions import PermissionsClient
from kagi_shared.service_api import Caller

CALLER = Caller(account_id="acc-1", login_id="owner@kagi.example.jp", email="owner@kagi.example.jp", roles=("owner",))


class Recording:
    """A transport that records each call and answers with the next reply given."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.sent: list[dict[str, Any]] = []

    async def send(self, service: str, method: str, path: str, *, caller: Caller | None = None,
                   body: bytes | None = None, params: Mapping[str, str] | None = None,
                   request_id: str | None = None, route: str | None = None, chained: bool = False) -> bytes:
        self.sent.append({"service": service, "method": method, "path": path, "caller": caller,
                          "body": None if body is None else msgspec.json.decode(body), "rid": request_id})
        reply = self.replies.pop(0)
        return b"" if reply is None else msgspec.json.encode(reply)


class Forwards(ApiController):
    path = "/api/test"

    viewers = forward(get("/locations/{location_id:str}/viewers", opt={"roles": ("owner",)}, summary="viewers"),
                      InviteClient.viewers)
    verify = forward(post("/step-up/verify", opt={"roles": ("owner",)}, status_code=200, summary="verify"),
                     InviteClient.verify_step_up)
    check = forward(post("/links/check", opt={"roles": ("public",)}, status_code=200, summary="check"),
                    InviteClient.check_link, LinkCheckIn)
    confirm = forward(post("/totp/confirm", opt={"roles": ("owner",)}, status_code=204, summary="confirm"),
                      LifecycleClient.totp_confirm, ends_sessions=True)
    remove = forward(delete("/locations/{location_id:str}/viewers/{account_id:str}", opt={"roles": ("owner",)},
                            status_code=204, summary="remove"), InviteClient.remove_viewer)


def app_with(transport: Recording) -> Litestar:
    def call(request: Request[Any, Any, Any]) -> Call:
        request.scope.setdefault("state", {}).update(caller=CALLER, request_id="rid-42", client_ip="203.0.113.9")
        return Call(request, LifecycleClient(transport), InviteClient(transport), PermissionsClient(transport),
                    NotifyClient(transport), AuditClient(transport))

    return Litestar([Forwards], dependencies={"call": Provide(call, sync_to_thread=False)})


def test_path_values_reach_the_client_with_the_caller_and_the_reply_is_the_answer() -> None:
    transport = Recording({"items": [{"accountId": "v-1", "loginId": "viewer@kagi.example.jp",
                                      "addedAt": "2026-04-01T00:00:00Z"}]})
    with TestClient(app_with(transport)) as client:
        answer = client.get("/api/test/locations/loc-7/viewers")
    assert answer.status_code == 200
    assert answer.json() == {"items": [{"accountId": "v-1", "loginId": "viewer@kagi.example.jp",
                                        "addedAt": "2026-04-01T00:00:00Z"}]}
    assert transport.sent == [{"service": "invite", "method": "GET", "path": "/internal/locations/loc-7/viewers",
                               "caller": CALLER, "body": None, "rid": "rid-42"}]


def test_the_body_is_validated_as_the_client_methods_type_and_passed_on() -> None:
    transport = Recording({"verified": True, "validUntil": "2026-04-01T00:15:00Z"})
    with TestClient(app_with(transport)) as client:
        refused = client.post("/api/test/step-up/verify", json={"code": "123456", "extra": 1})
        answer = client.post("/api/test/step-up/verify", json={"code": "123456"})
    assert refused.status_code == 400  # an unknown field: refused before any service is asked
    assert answer.status_code == 200 and answer.json() == {"verified": True, "validUntil": "2026-04-01T00:15:00Z"}
    assert [(sent["path"], sent["body"], sent["caller"]) for sent in transport.sent] == [
        ("/internal/step-up/verify", {"code": "123456"}, CALLER)]


def test_two_path_values_in_the_methods_order_and_an_empty_answer() -> None:
    transport = Recording(None)
    with TestClient(app_with(transport)) as client:
        answer = client.delete("/api/test/locations/loc-7/viewers/acc-9")
    assert answer.status_code == 204 and answer.content == b""
    assert transport.sent[0]["path"] == "/internal/locations/loc-7/viewers/acc-9"


def test_a_public_body_goes_on_as_the_methods_own_with_the_clients_address() -> None:
    transport = Recording({"email": "invitee@kagi.example.jp", "expiresAt": "2026-04-02T00:00:00Z"})
    with TestClient(app_with(transport)) as client:
        refused = client.post("/api/test/links/check", json={"token": "t-1", "clientIp": "198.51.100.1"})
        answer = client.post("/api/test/links/check", json={"token": "t-1"})
    assert refused.status_code == 400  # the public body has no clientIp: a client cannot choose its address
    assert answer.status_code == 200 and answer.json()["email"] == "invitee@kagi.example.jp"
    assert [(sent["path"], sent["body"], sent["caller"]) for sent in transport.sent] == [
        ("/internal/invitations/links/check", {"token": "t-1", "clientIp": "203.0.113.9"}, None)]


def test_a_route_that_ends_the_sessions_drops_the_cached_session_version_at_once() -> None:
    transport = Recording(None, None)
    with TestClient(app_with(transport)) as client:
        SESSIONS._cache[CALLER.account_id] = (float("inf"), (1, "active", ("owner",)))
        kept = client.delete("/api/test/locations/loc-7/viewers/acc-9")
        assert kept.status_code == 204 and CALLER.account_id in SESSIONS._cache
        ended = client.post("/api/test/totp/confirm", json={"code": "123456"})
    assert ended.status_code == 204 and CALLER.account_id not in SESSIONS._cache
    assert transport.sent[-1]["path"] == "/internal/me/totp/confirm"


def test_a_forwarded_route_is_named_by_its_attribute() -> None:
    schema = app_with(Recording()).openapi_schema.to_schema()
    operations = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    assert operations == {"ApiTestLocationsLocationIdViewersViewers", "ApiTestStepUpVerifyVerify",
                          "ApiTestLinksCheckCheck", "ApiTestTotpConfirmConfirm",
                          "ApiTestLocationsLocationIdViewersAccountIdRemove"}
