"""Who is asking: ClickHouse's three ways of passing credentials over HTTP.

In the order ClickHouse checks them: `X-ClickHouse-User`/`X-ClickHouse-Key` headers,
HTTP basic auth, `user`/`password` URL parameters. No credentials at all means the
user "default" with an empty password, as with a stock ClickHouse server.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from pygate.chserver.errors import AUTHENTICATION_FAILED, ClickHouseError

DEFAULT_USER = "default"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password: str
    may_write: bool


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str


def credentials_of(headers: Mapping[str, str], params: Mapping[str, str]) -> Credentials:
    header_user = headers.get("X-ClickHouse-User")
    header_key = headers.get("X-ClickHouse-Key")
    if header_user is not None or header_key is not None:
        return Credentials(header_user or DEFAULT_USER, header_key or "")
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _failed(DEFAULT_USER, "malformed basic authorization") from None
        user, _, password = decoded.partition(":")
        return Credentials(user or DEFAULT_USER, password)
    if authorization:
        raise _failed(DEFAULT_USER, f"unsupported authorization scheme {scheme!r}")
    return Credentials(params.get("user") or DEFAULT_USER, params.get("password", ""))


class Authenticator:
    def __init__(self, users: list[User]) -> None:
        self._users = {user.name: user for user in users}

    def authenticate(self, credentials: Credentials) -> User:
        user = self._users.get(credentials.user)
        # Compare even for unknown users, so that timing does not tell which names exist.
        expected = user.password if user is not None else "\x00unknown user"
        if not hmac.compare_digest(credentials.password.encode(), expected.encode()):
            raise _failed(credentials.user)
        assert user is not None
        return user


def _failed(user: str, detail: str | None = None) -> ClickHouseError:
    reason = detail or "password is incorrect, or there is no user with such name"
    return ClickHouseError(AUTHENTICATION_FAILED, f"{user}: Authentication failed: {reason}")
