"""Secrets the service must read back (a TOTP seed cannot be hashed): AES-256-GCM under a key derived from the
server pepper, so a copy of the database alone does not give them away."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class SecretBox:
    def __init__(self, pepper: str, purpose: str) -> None:
        self._aead = AESGCM(hmac.new(pepper.encode(), f"kagi-secret-box:{purpose}".encode(), hashlib.sha256).digest())
        self._purpose = purpose.encode()

    def seal(self, plain: str, context: str) -> str:
        """``context`` (the account id) is bound in: a sealed value copied to another account does not open."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plain.encode(), self._purpose + b":" + context.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return self._aead.decrypt(raw[:12], raw[12:], self._purpose + b":" + context.encode()).decode()
