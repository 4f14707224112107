"""One-time codes and keys: generated from a CSPRNG, stored only as keyed hashes, compared in constant time.

Codes are high-entropy and short-lived, so an HMAC with a server-side pepper is the right
hash (argon2 is for low-entropy passwords); a leaked database alone does not reveal them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

# Upper-case letters and digits without the look-alikes 0/O and 1/I/L (SPEC §2).
UNAMBIGUOUS_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_SEPARATORS = re.compile(r"[\s\-]+")


def new_code(length: int = 12, alphabet: str = UNAMBIGUOUS_ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def normalize(code: str) -> str:
    """Accept what people type: any case, spaces and hyphens between groups."""
    return _SEPARATORS.sub("", code).upper()


def hash_code(code: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), normalize(code).encode(), hashlib.sha256).hexdigest()


def verify_code(code: str, stored_hash: str, pepper: str) -> bool:
    return hmac.compare_digest(hash_code(code, pepper), stored_hash)


def hash_token(token: str, pepper: str) -> str:
    """A URL token's keyed hash: the token is compared exactly (case matters in URL-safe base64)."""
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()
