"""A route that calls another service before answering (an invitation's redemption: invite → lifecycle) gets the
longer chained timeout, so the gateway does not answer 504 for work the services then complete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kagi_gateway.services import Services
from kagi_shared.contracts.invite import InviteClient, RedeemIn
from kagi_shared.problems import Problem
from kagi_shared.settings import SettingsError, load_settings

ANSWER_AFTER_S = 1.0


@pytest.fixture
async def slow_service() -> AsyncIterator[int]:
    """A real HTTP server that answers every request after ``ANSWER_AFTER_S``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        await asyncio.sleep(ANSWER_AFTER_S)
        body = b'{"ok":true}'
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


async def test_a_chained_call_outwaits_the_plain_timeout_that_a_plain_call_runs_out_of(slow_service: int) -> None:
    settings = load_settings({"KAGI_HTTP_SERVICE_TIMEOUT_S": "0.3", "KAGI_HTTP_CHAINED_SERVICE_TIMEOUT_S": "10",
                              "KAGI_PORTS_INVITE": str(slow_service)})
    services = Services(settings)
    try:
        with pytest.raises(Problem) as plain:
            await services.send("invite", "POST", "/internal/x", body=b"{}", route="/internal/x")
        assert (plain.value.status, plain.value.code) == (504, "service.timeout")
        assert await services.send("invite", "POST", "/internal/x", body=b"{}", route="/internal/x",
                                   chained=True) == b'{"ok":true}'
    finally:
        await services.close()


async def test_redemption_is_the_chained_route() -> None:
    sent: list[dict[str, Any]] = []

    class Recording:
        async def send(self, service: str, method: str, path: str, **kwargs: Any) -> bytes:
            sent.append({"path": path, **kwargs})
            return (b'{"accountId":"a","loginId":"g@example.jp","newAccount":true,"ownerLoginId":"o@example.jp",'
                    b'"loginUrl":"https://portal.example.jp/login"}')

    redeemed = await InviteClient(Recording()).redeem(RedeemIn(token="t" * 32, key="k" * 8, account="new",
                                                               password="x"))  # noqa: S106 - never sent anywhere
    assert redeemed.login_id == "g@example.jp"
    assert [(s["path"], s["chained"]) for s in sent] == [("/internal/invitations/redeem", True)]


def test_a_chained_timeout_shorter_than_the_plain_one_is_refused() -> None:
    with pytest.raises(SettingsError, match="KAGI_HTTP_CHAINED_SERVICE_TIMEOUT_S must be at least"):
        load_settings({"KAGI_HTTP_SERVICE_TIMEOUT_S": "20", "KAGI_HTTP_CHAINED_SERVICE_TIMEOUT_S": "10"})


