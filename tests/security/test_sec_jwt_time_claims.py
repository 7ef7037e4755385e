"""JWT time claims (exp, nbf, iat) in every form RFC 7519's NumericDate allows, and the forms
it does not: the first verification and the verified-token cache must agree on each.

An attacker holding a once-valid token wants it to outlive its exp: a float exp, an exponent
exp, a negative or non-numeric exp that a parser skips, a token reused from the cache after
it expired. A non-numeric nbf or iat must not be ignored either.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import jwt as pyjwt
import pytest
from support.client import assert_json_error, get
from support.configs import route, simple_config
from support.gateway import Gateway, running

SECRET = "an-hs256-secret-of-at-least-32-bytes!"


@pytest.fixture(scope="module")
def gw(upstreams, tmp_path_factory) -> Iterator[Gateway]:
    cfg = simple_config(upstreams)
    cfg["routes"] += [
        route("strict", ["/strict/*"], "echo", plugins={"jwt": {"secrets": [SECRET]}}),
        route(
            "lax",
            ["/lax/*"],
            "echo",
            plugins={"jwt": {"secrets": [SECRET], "require_exp": False}},
        ),
        route(
            "leeway",
            ["/leeway/*"],
            "echo",
            plugins={"jwt": {"secrets": [SECRET], "leeway": "2s"}},
        ),
    ]
    with running(Gateway(tmp_path_factory.mktemp("gw-jwt-time"), cfg)) as gateway:
        yield gateway


def signed(payload: str | dict) -> dict[str, str]:
    """A token over exactly this JSON text (so exponent notation and odd types survive)."""
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    token = pyjwt.api_jws.encode(raw.encode(), SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def status(gw: Gateway, path: str, payload: str | dict) -> int:
    return get(gw.url(path), headers=signed(payload)).status


def test_float_exp_expires_even_when_cached(gw: Gateway) -> None:
    headers = signed({"sub": "a", "exp": time.time() + 1.5})
    assert get(gw.url("/strict/x"), headers=headers).status == 200
    assert get(gw.url("/strict/x"), headers=headers).status == 200, "served from the cache"
    time.sleep(2.6)
    refused = get(gw.url("/strict/x"), headers=headers)
    assert "expired" in assert_json_error(refused, 401, "unauthorized")["message"]


def test_exponent_notation_exp_expires_even_when_cached(gw: Gateway) -> None:
    exp = time.time() + 1.5
    payload = f'{{"sub": "a", "exp": {exp / 1e9:.13f}e9}}'
    assert "e9" in payload
    headers = signed(payload)
    assert get(gw.url("/strict/x"), headers=headers).status == 200
    time.sleep(2.6)
    assert get(gw.url("/strict/x"), headers=headers).status == 401


def test_exp_forms_at_first_verification(gw: Gateway) -> None:
    now = time.time()
    cases = {
        # form: (payload, status on the strict route, status with require_exp false)
        "integer future": ({"sub": "a", "exp": int(now) + 60}, 200, 200),
        "float future": ({"sub": "a", "exp": now + 60.25}, 200, 200),
        "exponent future": (f'{{"sub":"a","exp":{(now + 60) / 1e3:.6f}E3}}', 200, 200),
        "huge integer": (f'{{"sub":"a","exp":{10**30}}}', 200, 200),
        "huge float": ('{"sub":"a","exp":1e300}', 200, 200),
        "integer past": ({"sub": "a", "exp": int(now) - 60}, 401, 401),
        "float just past": ({"sub": "a", "exp": now - 0.6}, 401, 401),
        "negative": ({"sub": "a", "exp": -1}, 401, 401),
        "negative float": ({"sub": "a", "exp": -1.5e9}, 401, 401),
        "zero": ({"sub": "a", "exp": 0}, 401, 401),
        "out of range": ('{"sub":"a","exp":1e400}', 401, 401),
        "string": ({"sub": "a", "exp": str(int(now) + 60)}, 401, 401),
        "boolean": ({"sub": "a", "exp": True}, 401, 401),
        "null": ({"sub": "a", "exp": None}, 401, 401),
        "array": ({"sub": "a", "exp": [int(now) + 60]}, 401, 401),
        "object": ({"sub": "a", "exp": {"t": int(now) + 60}}, 401, 401),
        "absent": ({"sub": "a"}, 401, 200),
    }
    got = {
        name: (status(gw, "/strict/x", p), status(gw, "/lax/x", p))
        for name, (p, _, _) in cases.items()
    }
    want = {name: (strict, lax) for name, (_, strict, lax) in cases.items()}
    assert got == want


def test_nbf_forms(gw: Gateway) -> None:
    now = time.time()
    exp = int(now) + 60
    cases = {
        "float future": ({"sub": "a", "exp": exp, "nbf": now + 30.5}, 401),
        "integer future": ({"sub": "a", "exp": exp, "nbf": int(now) + 30}, 401),
        "exponent future": (f'{{"sub":"a","exp":{exp},"nbf":{(now + 30) / 1e9:.12f}e9}}', 401),
        "huge": ({"sub": "a", "exp": exp, "nbf": 1e300}, 401),
        "string": ({"sub": "a", "exp": exp, "nbf": "0"}, 401),
        "boolean": ({"sub": "a", "exp": exp, "nbf": False}, 401),
        "null": ({"sub": "a", "exp": exp, "nbf": None}, 401),
        "float past": ({"sub": "a", "exp": exp, "nbf": now - 5.5}, 200),
        "negative": ({"sub": "a", "exp": exp, "nbf": -100}, 200),
    }
    got = {name: status(gw, "/strict/x", p) for name, (p, _) in cases.items()}
    assert got == {name: want for name, (_, want) in cases.items()}


def test_nbf_float_becomes_valid_after_it_passes(gw: Gateway) -> None:
    headers = signed({"sub": "a", "exp": int(time.time()) + 60, "nbf": time.time() + 1.2})
    refused = get(gw.url("/strict/x"), headers=headers)
    assert "nbf" in assert_json_error(refused, 401, "unauthorized")["message"]
    time.sleep(1.8)
    assert get(gw.url("/strict/x"), headers=headers).status == 200


def test_iat_forms(gw: Gateway) -> None:
    now = time.time()
    exp = int(now) + 60
    cases = {
        "integer past": ({"sub": "a", "exp": exp, "iat": int(now) - 10}, 200),
        "float past": ({"sub": "a", "exp": exp, "iat": now - 0.5}, 200),
        "exponent past": (f'{{"sub":"a","exp":{exp},"iat":{(now - 10) / 1e9:.12f}e9}}', 200),
        "future": ({"sub": "a", "exp": exp, "iat": now + 600.5}, 401),
        "huge": ({"sub": "a", "exp": exp, "iat": 1e300}, 401),
        "string": ({"sub": "a", "exp": exp, "iat": "yesterday"}, 401),
        "boolean": ({"sub": "a", "exp": exp, "iat": True}, 401),
        "object": ({"sub": "a", "exp": exp, "iat": {}}, 401),
    }
    got = {name: status(gw, "/strict/x", p) for name, (p, _) in cases.items()}
    assert got == {name: want for name, (_, want) in cases.items()}


def test_leeway_applies_to_float_claims_and_the_cache(gw: Gateway) -> None:
    now = time.time()
    assert status(gw, "/leeway/x", {"sub": "a", "exp": now - 1.2}) == 200
    assert status(gw, "/leeway/x", {"sub": "a", "exp": now - 3.5}) == 401
    assert status(gw, "/leeway/x", {"sub": "a", "exp": now + 60, "nbf": now + 1.2}) == 200
    assert status(gw, "/leeway/x", {"sub": "a", "exp": now + 60, "nbf": now + 4.5}) == 401
    assert status(gw, "/leeway/x", {"sub": "a", "exp": now + 60, "iat": now + 1.5}) == 200
    # Cached: valid until exp + 2 s of leeway, not a moment longer.
    headers = signed({"sub": "a", "exp": time.time() + 0.3})
    assert get(gw.url("/leeway/x"), headers=headers).status == 200
    time.sleep(1.0)
    assert get(gw.url("/leeway/x"), headers=headers).status == 200, "inside the leeway"
    time.sleep(2.0)
    assert get(gw.url("/leeway/x"), headers=headers).status == 401
