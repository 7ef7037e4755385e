"""basic-auth and jwt: authentication plugins that run in the Rust core, through the gateway."""

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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support.client import assert_json_error, get
from support.configs import route, simple_config
from support.gateway import run_cli
from support.net import wait_until

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


def test_basic_auth(make_gateway, upstreams, tmp_path, jwks_server) -> None:
    gw = make_gateway(config(upstreams, tmp_path, jwks_server[1])[0])
    ok = get(gw.url("/basic/x"), headers=basic("bob", "b0b:pa55"))
    assert ok.status == 200
    seen = ok.upstream_headers()
    assert seen["x-consumer-username"] == "bob"
    assert "authorization" not in seen  # hide_credentials is on by default
    for headers in ({}, basic("bob", "wrong"), basic("alice", "b0b:pa55")):
        refused = get(gw.url("/basic/x"), headers=headers)
        assert_json_error(refused, 401, "unauthorized")
        assert refused.header("www-authenticate").startswith("Basic ")
    garbage = get(gw.url("/basic/x"), headers={"Authorization": "Basic %%%"})
    assert "malformed" in assert_json_error(garbage, 401, "unauthorized")["message"]
    rid = ok.header("x-request-id")
    assert gw.records([rid])[rid]["consumer"] == "bob"


def test_jwt_hs256_claims_and_consumer(make_gateway, upstreams, tmp_path, jwks_server) -> None:
    gw = make_gateway(config(upstreams, tmp_path, jwks_server[1])[0])
    good = {"sub": "carol", "iss": "pygate-tests"}
    ok = get(gw.url("/jwt-hs/x"), headers=token(good, SECRET))
    assert ok.status == 200
    assert ok.upstream_headers()["x-consumer-username"] == "carol"
    cases = {
        "expired": token({**good, "exp": int(time.time()) - 3600}, SECRET),
        "bad signature": token(good, SECRET.upper()),
        "wrong issuer": token({**good, "iss": "someone-else"}, SECRET),
        "not valid yet": token({**good, "nbf": int(time.time()) + 3600}, SECRET),
        "missing token": {},
        "malformed": {"Authorization": "Bearer not.a.jwt"},
    }
    for reason, headers in cases.items():
        error = assert_json_error(get(gw.url("/jwt-hs/x"), headers=headers), 401, "unauthorized")
        assert reason in error["message"], (reason, error)
    # A token signed with "none" is never accepted.
    unsigned = pyjwt.encode({**good, "exp": int(time.time()) + 60}, None, algorithm="none")
    none = get(gw.url("/jwt-hs/x"), headers={"Authorization": f"Bearer {unsigned}"})
    assert_json_error(none, 401, "unauthorized")
    # rate-limit by: consumer counts per token subject (2 per minute; carol used 1).
    assert get(gw.url("/jwt-hs/x"), headers=token(good, SECRET)).status == 200
    limited = get(gw.url("/jwt-hs/x"), headers=token(good, SECRET))
    assert_json_error(limited, 429, "rate_limited")
    other = {"sub": "dave", "iss": "pygate-tests"}
    assert get(gw.url("/jwt-hs/x"), headers=token(other, SECRET)).status == 200


def test_jwt_rs256_from_jwks_file_and_url(make_gateway, upstreams, tmp_path, jwks_server) -> None:
    url_key, url = jwks_server
    cfg, file_key = config(upstreams, tmp_path, url)
    gw = make_gateway(cfg)
    by_file = get(gw.url("/jwt-file/x"), headers=token({"sub": "f"}, file_key, "RS256", "file-key"))
    assert by_file.status == 200 and by_file.upstream_headers()["x-consumer-username"] == "f"
    by_url = get(gw.url("/jwt-url/x"), headers=token({"sub": "u"}, url_key, "RS256", "url-key"))
    assert by_url.status == 200
    # The other provider's key does not open this route, nor does an HS256 token made
    # with the RSA public key as its secret (the classic algorithm-confusion attack).
    crossed = get(gw.url("/jwt-url/x"), headers=token({"sub": "u"}, file_key, "RS256", "url-key"))
    assert_json_error(crossed, 401, "unauthorized")
    public_pem = url_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    confused = hs256_by_hand({"sub": "u", "exp": int(time.time()) + 60}, public_pem)
    assert_json_error(
        get(gw.url("/jwt-url/x"), headers={"Authorization": f"Bearer {confused}"}),
        401,
        "unauthorized",
    )


def test_rotated_jwks_keys_are_picked_up_without_a_reload(make_gateway, upstreams) -> None:
    old_key, old_jwk = rsa_key("old")
    new_key, new_jwk = rsa_key("new")
    endpoint = JwksEndpoint([old_jwk])
    try:
        cfg = simple_config(upstreams)
        cfg["routes"].append(
            route(
                "rotating",
                ["/rotating/*"],
                "echo",
                plugins={"jwt": {"jwks_url": endpoint.url, "jwks_refresh": "1s"}},
            )
        )
        gw = make_gateway(cfg)
        old_token = token({"sub": "a"}, old_key, "RS256", "old")
        new_token = token({"sub": "a"}, new_key, "RS256", "new")
        assert get(gw.url("/rotating/x"), headers=old_token).status == 200
        assert_json_error(get(gw.url("/rotating/x"), headers=new_token), 401, "unauthorized")
        endpoint.publish([old_jwk, new_jwk])  # the provider publishes its next key
        accepted = lambda: get(gw.url("/rotating/x"), headers=new_token).status == 200  # noqa: E731
        wait_until(accepted, 15, interval=0.2, what="the rotated key to be accepted")
        assert get(gw.url("/rotating/x"), headers=old_token).status == 200
        assert "jwks refresh: new keys from" in gw.log_text()
    finally:
        endpoint.server.shutdown()


def test_bad_auth_configs_name_the_field(tmp_path) -> None:
    cases = {
        "routes[0].plugins.jwt.secrets[0]": "{jwt: {secrets: [short]}}",
        "routes[0].plugins.jwt.jwks_file": "{jwt: {jwks_file: missing.json}}",
        "routes[0].plugins.jwt.jwks_url": "{jwt: {jwks_url: 'http://127.0.0.1:1/jwks'}}",
        "routes[0].plugins.basic-auth": "{basic-auth: {}}",
        "routes[0].plugins.jwt.jwks_refresh": (
            f"{{jwt: {{secrets: ['{SECRET}'], jwks_refresh: 100ms}}}}"
        ),
        "routes[0].plugins.jwt": f"{{key-auth: {{}}, jwt: {{secrets: ['{SECRET}']}}}}",
        "consumers[0].basic_auth[0].username": None,
    }
    for field, plugins in cases.items():
        path = tmp_path / "gw.yaml"
        consumer = "{name: a, keys: [k]}"
        if plugins is None:
            consumer = "{name: a, basic_auth: [{username: 'a:b', password: p}]}"
            plugins = "{}"
        path.write_text(
            "listen: 127.0.0.1:1\n"
            f"consumers: [{consumer}]\n"
            "upstreams: [{name: u, targets: ['127.0.0.1:9']}]\n"
            f"routes: [{{name: r, paths: ['/x'], upstream: u, plugins: {plugins}}}]\n"
        )
        done = run_cli("check", "--config", str(path))
        assert done.returncode == 2, (field, done.stdout, done.stderr)
        assert field in done.stderr, (field, done.stderr)
