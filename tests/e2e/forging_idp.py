"""A provider that forges its ID tokens, for the e2e tests of the gateway's callback: discovery, JWKS, an authorization
endpoint that answers every request with a code at once, and a token endpoint whose ID token is genuine or forged
as the test asks (signed by another key, for another audience, carrying an earlier flow's nonce, expired). Real RSA
keys and signatures (joserfc); a plain threaded HTTP server on a loopback port named in the test settings."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

Forgery = Literal["genuine", "wrong_signature", "wrong_audience", "replayed_nonce", "expired"]


class ForgingIdP:
    def __init__(self, issuer: str, client_id: str) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"}, private=True)
        self.stranger = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"}, private=True)
        self.forgery: Forgery = "genuine"
        self.subject = "forged-user"
        self.nonces: list[str] = []  # every flow's nonce, in order
        self.codes: dict[str, str] = {}  # code -> the nonce of its flow
        port = urlsplit(issuer).port
        assert port
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ForgingIdP:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "sub": self.subject, "aud": self.client_id, "iat": now,
                                  "exp": now + 300, "nonce": nonce}
        key = self.key
        if self.forgery == "wrong_signature":
            key = self.stranger
        elif self.forgery == "wrong_audience":
            claims["aud"] = "someone-else"
        elif self.forgery == "replayed_nonce":
            claims["nonce"] = self.nonces[-2]  # the flow before this one
        elif self.forgery == "expired":
            claims.update(iat=now - 4000, exp=now - 3600)
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _json(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._json({"issuer": idp.issuer, "authorization_endpoint": f"{idp.issuer}/auth",
                                "token_endpoint": f"{idp.issuer}/token", "jwks_uri": f"{idp.issuer}/jwks",
                                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                                "id_token_signing_alg_values_supported": ["RS256"],
                                "code_challenge_methods_supported": ["S256"]})
                elif url.path == "/jwks":
                    self._json(KeySet([idp.key]).as_dict(private=False))
                elif url.path == "/auth":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    code = secrets.token_urlsafe(16)
                    idp.nonces.append(query["nonce"])
                    idp.codes[code] = query["nonce"]
                    self.send_response(302)
                    self.send_header("location", f"{query['redirect_uri']}?"
                                                 f"{urlencode({'code': code, 'state': query['state']})}")
                    self.end_headers()
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                nonce = idp.codes.pop(form.get("code", ""), None)
                if self.path != "/token" or nonce is None:
                    self.send_error(400)
                    return
                self._json({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                            "id_token": idp.id_token(nonce)})

        return Handler
