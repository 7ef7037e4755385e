"""Credentials for the authentication plugin tests (basic-auth, jwt, and the config-error
table of test_plugin_combinations): Basic headers, JWTs signed as an identity provider
would (and one signed as an attacker would), a JWKS endpoint on loopback, and the gateway
config whose routes those tests share."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from .configs import route, simple_config

SECRET = "an-hs256-secret-of-at-least-32-bytes!"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def rsa_key(kid: str) -> tuple[rsa.RSAPrivateKey, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return key, {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def token(claims: dict, key, alg: str = "HS256", kid: str | None = None) -> dict[str, str]:
    body = {"exp": int(time.time()) + 300, **claims}
    headers = {"kid": kid} if kid else None
    return {"Authorization": f"Bearer {pyjwt.encode(body, key, algorithm=alg, headers=headers)}"}


def hs256_by_hand(claims: dict, secret: bytes) -> str:
    """PyJWT refuses to sign with a public key as HMAC secret; an attacker would not."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "url-key"}).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


class JwksEndpoint:
    """A JWKS endpoint on loopback, as an identity provider publishes it; `publish` rotates."""

    def __init__(self, jwks: list[dict]) -> None:
        self.document = json.dumps({"keys": jwks}).encode()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                document = endpoint.document
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def publish(self, jwks: list[dict]) -> None:
        self.document = json.dumps({"keys": jwks}).encode()


@pytest.fixture(scope="module")
def jwks_server():
    key, jwk = rsa_key("url-key")
    endpoint = JwksEndpoint([jwk])
    yield key, endpoint.url
    endpoint.server.shutdown()


def config(upstreams, tmp_path, jwks_url: str) -> tuple[dict, rsa.RSAPrivateKey]:
    file_key, file_jwk = rsa_key("file-key")
    (tmp_path / "gw").mkdir(exist_ok=True)
    (tmp_path / "gw" / "jwks.json").write_text(json.dumps({"keys": [file_jwk]}))
    consumers = [
        {"name": "alice", "keys": ["alice-key"]},
        {"name": "bob", "basic_auth": [{"username": "bob", "password": "b0b:pa55"}]},
    ]
    cfg = simple_config(upstreams, consumers=consumers)
    cfg["routes"] += [
        route("basic", ["/basic/*"], "echo", plugins={"basic-auth": {}}),
        route(
            "jwt-hs",
            ["/jwt-hs/*"],
            "echo",
            plugins={
                "jwt": {"secrets": [SECRET], "issuer": "pygate-tests"},
                "rate-limit": {"rate": 2, "per": "1m", "by": "consumer"},
            },
        ),
        route("jwt-file", ["/jwt-file/*"], "echo", plugins={"jwt": {"jwks_file": "jwks.json"}}),
        route("jwt-url", ["/jwt-url/*"], "echo", plugins={"jwt": {"jwks_url": jwks_url}}),
    ]
    return cfg, file_key
