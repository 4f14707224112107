"""Authenticated encryption of a message field that must not sit readable on a topic (AES-256-GCM).

A one-time code or a reset link on ``notify.requests`` stays there (and in its dead-letter topic) for the
topic's retention: anyone who may read the topic, a backup of the broker's disks, or a support tool that
browses it, could use it. Sealed under a key only the producers and the reader hold, the topic carries
ciphertext only, and the reader knows that whoever wrote it held the key (GCM authenticates it), so nobody
who may merely produce to the topic can make notify send a mail of their own.

The key is derived per purpose (HKDF), so the one secret never serves two ciphers; the ``aad`` ties a sealed
value to the message fields it travels with (a code sealed for one recipient does not open for another).
A sealed value names its key by a short fingerprint: after a rotation the reader says which key it lacks.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that does not open: another key, altered, or not sealed at all."""


class Sealer:
    def __init__(self, secret: str, purpose: str) -> None:
        if not secret:
            raise SealError(f"no key to seal {purpose}")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=f"kagi sealing {purpose}".encode()).derive(secret.encode())
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(key).hexdigest()[:8]
        self.purpose = purpose

    def seal(self, plaintext: bytes, aad: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: safe far beyond this key's message count
        sealed = self._aead.encrypt(nonce, plaintext, self._header() + aad)
        return f"{VERSION}.{self.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def open(self, value: str, aad: bytes) -> bytes:
        version, _, rest = value.partition(".")
        key_id, _, body = rest.partition(".")
        if version != VERSION or not body:
            raise SealError(f"{self.purpose}: not a sealed value")
        if key_id != self.key_id:
            raise SealError(f"{self.purpose}: sealed with key {key_id}, this process holds {self.key_id}")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._header() + aad)
        except (InvalidTag, ValueError) as exc:
            raise SealError(f"{self.purpose}: sealed value altered or not for these fields") from exc

    def _header(self) -> bytes:
        return f"{VERSION}|{self.purpose}|".encode()
