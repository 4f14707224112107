"""The edge rules: who the client is, whether they are abroad, and how often they may ask."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from kagi_gateway.edge import Edge, SlidingWindow, _networks, client_address, is_domestic
from kagi_shared.problems import Problem
from kagi_shared.settings import EdgeSettings
from tests.support import client_from, gateway_app, no_services

TRUSTED = _networks("10.0.0.0/8, 127.0.0.1/32")


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    assert client_address("203.0.113.9", "8.8.8.8", TRUSTED) == "203.0.113.9"  # untrusted peer: header ignored
    assert client_address("10.1.2.3", "133.11.0.1", TRUSTED) == "133.11.0.1"
    # The client may prepend anything; the right-most untrusted hop is the one our proxy saw.
    assert client_address("10.1.2.3", "8.8.8.8, 133.11.0.1, 10.9.9.9", TRUSTED) == "133.11.0.1"
    assert client_address("10.1.2.3", "not-an-ip", TRUSTED) == "10.1.2.3"
    assert client_address(None, "8.8.8.8", TRUSTED) is None


@pytest.mark.parametrize(("address", "domestic"), [
    ("133.11.0.1", True),      # University of Tokyo
    ("2001:200::1", True),     # WIDE, IPv6
    ("8.8.8.8", False),
    ("1.1.1.1", False),
    ("127.0.0.1", True),       # loopback and private ranges are our own network
    ("192.168.10.4", True),
    ("garbage", False),
])
def test_country_comes_from_the_offline_database(address: str, domestic: bool) -> None:
    assert is_domestic(address, frozenset({"JP"})) is domestic


def test_abroad_is_refused_unless_allowlisted() -> None:
    async def allowlist() -> frozenset[str]:
        return frozenset({"8.8.4.4"})

    edge = Edge(EdgeSettings(), allowlist)
    asyncio.run(edge.admit("133.11.0.1"))
    asyncio.run(edge.admit("8.8.4.4"))
    with pytest.raises(Problem) as refused:
        asyncio.run(edge.admit("8.8.8.8"))
    assert refused.value.status == 403 and refused.value.code == "edge.abroad_forbidden"
    assert "日本国外" in refused.value.title


def test_sliding_window_counts_and_says_how_long_to_wait() -> None:
    window = SlidingWindow(60)
    assert [window.hit("k", 3, now=t) for t in (0, 1, 2)] == [0, 0, 0]
    assert window.hit("k", 3, now=30) == pytest.approx(30)
    assert window.hit("other", 3, now=30) == 0
    assert window.hit("k", 3, now=60.5) == 0  # the first hit left the window


async def test_gateway_refuses_abroad_and_limits_calls_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGI_EDGE_TRUSTED_PROXIES", "10.0.0.0/8")
    monkeypatch.setenv("KAGI_EDGE_RATE_LOGIN_PER_IP", "3")
    monkeypatch.setenv("KAGI_EDGE_RATE_DEFAULT_PER_IP", "3")
    no_services(monkeypatch)
    # The socket peer is our load balancer (10.0.0.5); the client is in X-Forwarded-For.
    async with gateway_app() as app, client_from(app, "10.0.0.5") as client:
        await _exercise(client)


async def _exercise(client: httpx.AsyncClient) -> None:
    body = {"loginId": "a@example.jp", "password": "x"}
    abroad = await client.post("/api/v1/auth/login", json=body, headers={"X-Forwarded-For": "8.8.8.8"})
    assert abroad.status_code == 403
    assert abroad.headers["content-type"].startswith("application/problem+json")
    assert abroad.json()["code"] == "edge.abroad_forbidden"
    assert (await client.get("/health", headers={"X-Forwarded-For": "8.8.8.8"})).status_code == 200

    home = {"X-Forwarded-For": "133.11.0.1"}
    # lifecycle is unreachable here: no login was judged, so none spends the address's 3 attempts.
    answers = [await client.post("/api/v1/auth/login", json=body, headers=home) for _ in range(5)]
    assert [(r.status_code, r.json()["code"]) for r in answers] == [(503, "service.unavailable")] * 5

    # Calls that were answered count: the fourth within the window is refused.
    answers = [(await client.get("/api/v1/me", headers=home)).status_code for _ in range(3)]
    assert answers == [401, 401, 401]
    limited = await client.get("/api/v1/me", headers=home)
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["code"] == "edge.rate_limited"
    other = await client.get("/api/v1/me", headers={"X-Forwarded-For": "133.11.0.2"})
    assert other.status_code == 401  # limits are per client address


def test_guess_limits_hold_per_address_and_account_and_refusals_are_not_counted() -> None:
    edge = Edge(EdgeSettings(rate_guess_per_ip=5, rate_guess_per_account=2, rate_window_s=60), _no_allowlist)
    assert edge.limit("guess", "133.11.0.1", "acct-1") == ["guess:ip:133.11.0.1", "guess:acct:acct-1"]
    edge.limit("guess", "133.11.0.1", "acct-1")
    with pytest.raises(Problem) as refused:
        edge.limit("guess", "133.11.0.1", "acct-1")  # the account's 2 guesses are spent
    assert (refused.value.status, refused.value.code) == (429, "edge.rate_limited")
    # The refused guess did not count against the address: three more (other accounts) fit its 5.
    for account in ("acct-2", "acct-2", "acct-3"):
        edge.limit("guess", "133.11.0.1", account)
    with pytest.raises(Problem):
        edge.limit("guess", "133.11.0.1", "acct-4")


def test_a_guess_no_service_judged_is_given_back() -> None:
    edge = Edge(EdgeSettings(rate_guess_per_ip=20, rate_guess_per_account=1, rate_window_s=60), _no_allowlist)
    counted = edge.limit("guess", "133.11.0.1", "acct-1")
    unavailable = b'{"status":503,"code":"service.unavailable","title":"x"}'
    assert Edge.unjudged("guess", 503, unavailable)
    edge.give_back(counted)
    edge.limit("guess", "133.11.0.1", "acct-1")  # the account's one guess is still there
    with pytest.raises(Problem):
        edge.limit("guess", "133.11.0.1", "acct-1")
    # Only an unavailable service gives the guess back: busy (it was queued), a timeout (it may have been judged)
    # or any judged answer keep it counted, and other route classes are not guesses.
    assert not Edge.unjudged("guess", 503, b'{"status":503,"code":"service.busy"}')
    assert not Edge.unjudged("guess", 504, b'{"status":504,"code":"service.timeout"}')
    assert not Edge.unjudged("guess", 400, b'{"status":400,"code":"step_up.code_invalid"}')
    assert not Edge.unjudged("default", 503, unavailable)
    assert not Edge.unjudged("login", 503, b"not json")


async def _no_allowlist() -> frozenset[str]:
    return frozenset()


async def test_forwarded_for_from_an_untrusted_peer_is_not_believed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15, finding 3: the ingress CIDR is the only peer that may name the client. A client connecting from
    outside it cannot claim to be domestic, nor spread its calls over invented addresses."""
    monkeypatch.setenv("KAGI_EDGE_TRUSTED_PROXIES", "10.0.0.0/8")
    monkeypatch.setenv("KAGI_EDGE_RATE_DEFAULT_PER_IP", "2")
    no_services(monkeypatch)
    body = {"loginId": "a@example.jp", "password": "x"}
    async with gateway_app() as app:
        async with client_from(app, "8.8.8.8") as client:  # a foreign peer, not our ingress
            refused = await client.post("/api/v1/auth/login", json=body, headers={"X-Forwarded-For": "133.11.0.1"})
            assert refused.status_code == 403 and refused.json()["code"] == "edge.abroad_forbidden"
        async with client_from(app, "133.11.0.9") as client:  # domestic, but not a proxy
            codes = [(await client.get("/api/v1/me", headers={"X-Forwarded-For": f"133.11.0.{i}"})).status_code
                     for i in range(1, 4)]
            assert codes == [401, 401, 429], "one window for the peer, whatever it forwards"
        async with client_from(app, "10.1.2.3") as client:  # the ingress pod: believed
            forwarded = await client.post("/api/v1/auth/login", json=body, headers={"X-Forwarded-For": "8.8.8.8"})
            assert forwarded.status_code == 403 and forwarded.json()["code"] == "edge.abroad_forbidden"
