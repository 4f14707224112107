"""The second factor of privileged accounts: TOTP (RFC 6238, 30-second steps, 6 digits, SHA-1 as every
authenticator app expects), through pyotp. Pure: the clock and the stored state are passed in.

A code is accepted in the step before, at or after now (clock drift of an authenticator app), and only in a
step later than the last one used, so an observed code cannot be replayed.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import datetime

import pyotp

ISSUER = "Kagi"
STEP_S = 30
DRIFT_STEPS = 1


def roles_needing_it(setting: str) -> frozenset[str]:
    return frozenset(r.strip() for r in setting.split(",") if r.strip())


def required(roles: Iterable[str], setting: str) -> bool:
    """Privileged roles (operator, support, company admin by default) log in with a second factor."""
    return bool(roles_needing_it(setting) & set(roles))


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, login_id: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=login_id, issuer_name=issuer)


def normalise(code: str) -> str:
    return "".join(ch for ch in code if not ch.isspace() and ch != "-")


def matching_step(secret: str, code: str, now: datetime, last_step: int) -> int | None:
    """The time step the code belongs to, if it is valid now and newer than ``last_step``; else None."""
    entered = normalise(code)
    if len(entered) != 6 or not entered.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_S
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every candidate is compared (constant time each), whichever matches.
        if hmac.compare_digest(totp.generate_otp(step), entered) and step > last_step:
            found = step
    return found

