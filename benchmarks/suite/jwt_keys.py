"""The jwt_rs256 scenario's key pair and token: made once per suite run, never stored."""

from __future__ import annotations

import functools
import json
import time


@functools.cache
def _pair():
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    token = jwt.encode(
        {"sub": "bench", "exp": int(time.time()) + 24 * 3600},
        key,
        algorithm="RS256",
        headers={"kid": "bench"},
    )
    return {**public, "kid": "bench", "alg": "RS256"}, token


def public_jwk() -> dict:
    return _pair()[0]


def bearer_header() -> dict[str, str]:
    return {"Authorization": f"Bearer {_pair()[1]}"}
