"""ClickHouse-style errors: the codes, the text and the HTTP status a ClickHouse server uses.

Clients recognise errors by the `X-ClickHouse-Exception-Code` header and by a body of
the form `Code: 62. DB::Exception: <message>. (SYNTAX_ERROR) (version 26.9.2.1)`;
clickhouse-connect, for one, takes the symbolic name from the body.
"""

from __future__ import annotations

import re

# Codes from ClickHouse's ErrorCodes.cpp (checked with chDB's errorCodeToName()).
BAD_ARGUMENTS = 36
NOT_IMPLEMENTED = 48
LOGICAL_ERROR = 49
SYNTAX_ERROR = 62
UNKNOWN_COMPRESSION_METHOD = 89
READONLY = 164
UNKNOWN_SETTING = 115
QUERY_IS_TOO_LARGE = 229
CANNOT_DECOMPRESS = 271
SESSION_NOT_FOUND = 372
INVALID_SESSION_TIMEOUT = 374
ACCESS_DENIED = 497
AUTHENTICATION_FAILED = 516
STD_EXCEPTION = 1001

_NAMES = {
    BAD_ARGUMENTS: "BAD_ARGUMENTS",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    LOGICAL_ERROR: "LOGICAL_ERROR",
    SYNTAX_ERROR: "SYNTAX_ERROR",
    UNKNOWN_COMPRESSION_METHOD: "UNKNOWN_COMPRESSION_METHOD",
    READONLY: "READONLY",
    UNKNOWN_SETTING: "UNKNOWN_SETTING",
    QUERY_IS_TOO_LARGE: "QUERY_IS_TOO_LARGE",
    CANNOT_DECOMPRESS: "CANNOT_DECOMPRESS",
    SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
    INVALID_SESSION_TIMEOUT: "INVALID_SESSION_TIMEOUT",
    ACCESS_DENIED: "ACCESS_DENIED",
    AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED",
    STD_EXCEPTION: "STD_EXCEPTION",
}

# ClickHouse's exceptionCodeToHTTPStatus(), reduced to the codes chDB and this server
# raise; everything else is a 500 there too.
_BAD_REQUEST = {
    6, 25, 26, 27, 32, 33, 38, 41, 43, 44, 46, 47, 53, 62, 69, 70, 72, 73, 89, 115,
    117, 131, 190, 197, 271, 374, 393, 457, 456,
}  # fmt: skip
_NOT_FOUND = {16, 60, 46, 47, 63, 65, 81, 372}
_STATUS = {
    READONLY: 403,
    ACCESS_DENIED: 403,
    AUTHENTICATION_FAILED: 401,
    192: 401,  # UNKNOWN_USER
    193: 401,  # WRONG_PASSWORD
    194: 401,  # REQUIRED_PASSWORD
    QUERY_IS_TOO_LARGE: 413,
    NOT_IMPLEMENTED: 501,
    159: 408,  # TIMEOUT_EXCEEDED
    202: 503,  # TOO_MANY_SIMULTANEOUS_QUERIES
}

# chDB wraps some errors ("Streaming insert finish failed: Code: 33. DB::Exception:
# Code: 33. DB::Exception: ..."): the innermost "Code: N. DB::Exception:" is the real one.
_CODE_PREFIX = re.compile(r"Code: (\d+)\. DB::Exception: ")
_VERSION_SUFFIX = re.compile(r"\s*\(version [^)]*\)\.?")
_NAME_SUFFIX = re.compile(r"\s*\(([A-Z][A-Z0-9_]*)\)\s*$")


class ClickHouseError(Exception):
    """An error to report to the client the way ClickHouse would."""

    def __init__(self, code: int, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message.rstrip()
        self.name = name or _NAMES.get(code, "UNKNOWN_EXCEPTION")

    @property
    def http_status(self) -> int:
        if self.code in _STATUS:
            return _STATUS[self.code]
        if self.code in _BAD_REQUEST:
            return 400
        if self.code in _NOT_FOUND:
            return 404
        return 500

    def text(self, server_version: str) -> str:
        """The response body, as ClickHouse writes it (one line, newline-terminated)."""
        return (
            f"Code: {self.code}. DB::Exception: {self.message}. ({self.name}) "
            f"(version {server_version})\n"
        )

    @classmethod
    def from_chdb(cls, exc: BaseException) -> ClickHouseError:
        """Recover code, name and message from a chDB exception's text."""
        text = str(exc).strip()
        prefixes = list(_CODE_PREFIX.finditer(text))
        if not prefixes:
            return cls(STD_EXCEPTION, text or type(exc).__name__)
        innermost = prefixes[-1]
        message = _VERSION_SUFFIX.sub("", text[innermost.end() :]).strip()
        name = None
        while match := _NAME_SUFFIX.search(message):
            # The name can appear twice after unwrapping ("... (READONLY). (READONLY)").
            name = name or match.group(1)
            message = message[: match.start()].rstrip().rstrip(".")
        return cls(int(innermost.group(1)), message.rstrip("."), name)
