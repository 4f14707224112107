"""The gateway's edge rules, applied before any handler: client address, access from abroad, rate limits.

- **Client address**: the socket peer, or the right-most untrusted hop of ``X-Forwarded-For`` when
  the peer is a configured trusted proxy (anything else in that header is client-controlled).
- **Abroad** (SPEC §3, seed 2-8): the country of the global IP address, from the offline database
  shipped in the ``iptocc`` wheel; outside the allowed countries → 403 with the seed's message,
  unless the address is on a company's static allowlist (kept by the permissions service).
- **Rate limits**: sliding windows per route class (``opt={"rate": "login" | "guess"}``, default
  otherwise), per client address and per account, answering 429 with ``Retry-After``. Counters
  live in this process; with several gateway replicas each enforces its share. A login or code
  guess that a service could not judge (503 ``service.unavailable``: its database or the service
  itself was away) is given back: nothing was tried, and a user retrying through an outage must
  not find themselves locked out of their guesses when it ends.
- **Failed logins per address**: one ID locks after 5 wrong passwords, so an address with many failed
  logins (``login_failures_per_ip`` in ``login_failure_window_s``, any IDs) is trying IDs, or locking them
  out on purpose: its further logins wait (429) before any password is checked or any ID locked.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import iptocc
import msgspec

from kagi_shared.logging import get_logger
from kagi_shared.problems import SERVICE_UNAVAILABLE, Problem
from kagi_shared.settings import EdgeSettings

log = get_logger(__name__)

ABROAD = Problem(
    403, "edge.abroad_forbidden",
    "日本国外からのアクセスは禁止されています (403 Forbidden)。",
    "日本国外のグローバル IP アドレスからの利用が必要な場合は、システム窓口責任者から当社にご連絡ください。"
    "正当な理由が確認できた固定のグローバル IP アドレスはホワイトリストに登録します。",
)


def _networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]


def _in(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: list[Any]) -> str | None:
    """The client's address: walk X-Forwarded-For from the right while the hop is a trusted proxy."""
    if peer is None or not forwarded_for or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed header is not an address
    return hops[0] if hops else peer


def is_domestic(address: str | None, allowed: frozenset[str]) -> bool:
    if address is None:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if not ip.is_global:
        return True  # loopback, private, link-local: inside our own network
    return iptocc.country_code(str(ip)) in allowed


class SlidingWindow:
    """At most ``limit`` events per ``window`` seconds per key; returns seconds to wait when over."""

    def __init__(self, window_s: float, max_keys: int = 100_000) -> None:
        self.window = window_s
        self.max_keys = max_keys
        self.events: dict[str, deque[float]] = {}

    def hit(self, key: str, limit: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        queue = self.events.setdefault(key, deque())
        while queue and queue[0] <= now - self.window:
            queue.popleft()
        if len(queue) >= limit:
            return queue[0] + self.window - now
        queue.append(now)
        if len(self.events) > self.max_keys:
            self._prune(now)
        return 0.0

    def count(self, key: str, now: float | None = None) -> tuple[int, float]:
        """Events of ``key`` in the window, and seconds until the oldest leaves it (nothing counted)."""
        now = time.monotonic() if now is None else now
        queue = self.events.get(key)
        while queue and queue[0] <= now - self.window:
            queue.popleft()
        if not queue:
            return 0, 0.0
        return len(queue), queue[0] + self.window - now

    def give_back(self, key: str) -> None:
        """Undo one counted hit (the newest: with concurrent callers, which one does not change the count)."""
        queue = self.events.get(key)
        if queue:
            queue.pop()

    def _prune(self, now: float) -> None:
        self.events = {k: q for k, q in self.events.items() if q and q[-1] > now - self.window}


GUESSABLE = frozenset({"login", "guess"})


class Edge:
    def __init__(self, settings: EdgeSettings, allowlist: Callable[[], Awaitable[frozenset[str]]]) -> None:
        self.settings = settings
        self.trusted = _networks(settings.trusted_proxies)
        self.allowed = frozenset(c.strip().upper() for c in settings.allowed_countries.split(",") if c.strip())
        self.windows = SlidingWindow(settings.rate_window_s)
        self.login_failures = SlidingWindow(settings.login_failure_window_s)
        self.allowlist = allowlist

    async def admit(self, address: str | None) -> None:
        if not self.settings.geo_enabled or is_domestic(address, self.allowed):
            return
        if address is not None and address in await self.allowlist():
            return
        log.warning("edge.abroad_refused", ip=address)
        raise ABROAD

    def limit(self, route_class: str, address: str | None, account_id: str | None) -> list[str]:
        """Count the call against its windows; returns the keys counted (for ``give_back``), or raises 429."""
        s = self.settings
        per_ip, per_account = {
            "login": (s.rate_login_per_ip, None),
            "guess": (s.rate_guess_per_ip, s.rate_guess_per_account),
        }.get(route_class, (s.rate_default_per_ip, s.rate_default_per_account))
        limits = {f"{route_class}:ip:{address}": per_ip}
        if account_id and per_account:
            limits[f"{route_class}:acct:{account_id}"] = per_account
        waits = {key: self.windows.hit(key, limit) for key, limit in limits.items()}
        counted = [key for key, wait in waits.items() if wait <= 0]
        wait = max(waits.values())
        if wait > 0:
            self.give_back(counted)  # a refused call is not counted in the windows it passed
            raise Problem(429, "edge.rate_limited", "リクエストが多すぎます。しばらくしてから再度お試しください。",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))},
                          extra={"retryAfterSeconds": max(1, math.ceil(wait))})
        return counted

    def refuse_failing_address(self, address: str | None) -> None:
        """429 for a login from an address with too many failed logins in the window (any IDs)."""
        failures, wait = self.login_failures.count(f"login-failed:{address}")
        if failures >= self.settings.login_failures_per_ip:
            log.warning("edge.login_failures_refused", ip=address, failures=failures)
            seconds = max(1, math.ceil(wait))
            raise Problem(429, "edge.login_failures",
                          "ログインの失敗が多すぎます。しばらくしてから再度お試しください。",
                          headers={"Retry-After": str(seconds)}, extra={"retryAfterSeconds": seconds})

    def record_login_failure(self, address: str | None) -> None:
        self.login_failures.hit(f"login-failed:{address}", 2**31)

    def give_back(self, keys: list[str]) -> None:
        for key in keys:
            self.windows.give_back(key)

    @staticmethod
    def login_failed(status: int, body: bytes) -> bool:
        """A wrong password or second factor; asking for the code (``auth.totp_required``) is not a failure."""
        if status != 401:
            return False
        try:
            return bool(msgspec.json.decode(body).get("code") != "auth.totp_required")
        except (msgspec.DecodeError, AttributeError):
            return True

    @staticmethod
    def unjudged(route_class: str, status: int, body: bytes) -> bool:
        """A login or guess that no service evaluated: the budget for guessing was not spent."""
        if route_class not in GUESSABLE or status != 503:
            return False
        try:
            return bool(msgspec.json.decode(body).get("code") == SERVICE_UNAVAILABLE)
        except (msgspec.DecodeError, AttributeError):
            return False
