"""jwt: the authentication plugin that runs in the Rust core, through the gateway: HS256
claims and the consumer they name, RS256 keys from a JWKS file and URL, key rotation
(the `jwks_server` fixture and the tokens: support/auth_plugins.py)."""

from __future__ import annotations

import time

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from support.auth_plugins import SECRET, JwksEndpoint, config, hs256_by_hand, rsa_key, token
from support.client import assert_json_error, get
from support.configs import route, simple_config
from support.net import wait_until


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
