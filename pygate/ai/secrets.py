"""Every secret the AI gateway holds, and the one function that blanks them out of text.

Provider keys (and credentials in provider or MCP server URLs and MCP headers) are sent
only where they belong, but providers echo them in error texts, exceptions print URLs,
and a stream's error event is relayed as it came. So everything the AI gateway says
goes through `scrub`: its error bodies and stream error events (AiError scrubs its
message), pygate.ai_calls rows (their error is an AiError's message), MCP tool errors,
and every log line of the process (`install_log_filter`).

How. Each form a secret can take in text (itself, URL-encoded, JSON-escaped, base64,
also as the middle of a longer base64 blob such as `Basic base64(user:key)`) is one
alternative of a single regex, longest first, tried at every position (a lookahead),
and the spans found are merged before anything is replaced. So when one key is a
prefix of another, or two keys overlap, the whole span goes: no tail is left
(`***-secret`). Credentials the gateway cannot know in advance are blanked by shape:
the token after `Basic`/`Bearer`, the value of `key=`/`token=`/... query parameters,
and the password of a URL.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

import orjson

if TYPE_CHECKING:
    from pygate.config.ai_schema import AiSettings

BLANK = "***"
_SHORTEST_SECRET = 4  # blanking shorter strings would mangle every text for no gain
_SHORTEST_BASE64_CORE = 8
_CREDENTIAL_HEADER = re.compile(r"auth|key|token|secret|cookie|session|pass", re.I)
# Credentials by shape: (pattern, the group that is the secret).
_SHAPES = (
    # Authorization header values; the token must hold a non-letter (so prose survives).
    (re.compile(r"(?i)\b(?:basic|bearer|token)\s+((?=[\w+/=.~-]*[\d+/=._~-])[\w+/=.~-]{6,})"), 1),
    (
        re.compile(
            r"(?i)[?&;](?:key|api[-_]?key|access[-_]?token|token|auth|sig|signature|secret"
            r"|password|code)=([^&\s\"'#<>]+)"
        ),
        1,
    ),
    (re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]*:([^@\s/]+)@"), 1),
)


def _base64_cores(raw: bytes) -> set[str]:
    """The part of a base64 text that is the same wherever `raw` sits inside the
    encoded bytes: for each of the 3 alignments, the groups made of `raw` alone."""
    cores = set()
    for shift in range(3):
        padded = b"\0" * shift + raw
        whole = len(padded) // 3 * 3
        text = base64.b64encode(padded[:whole]).decode()[4 if shift else 0 :]
        if len(text) >= _SHORTEST_BASE64_CORE:
            cores.add(text)
            cores.add(text.translate(str.maketrans("+/", "-_")))
    return cores


def forms_of(secret: str) -> set[str]:
    """The texts that give `secret` away."""
    raw = secret.encode()
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        orjson.dumps(secret).decode()[1:-1],
    }
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(raw).decode()
        forms.update((encoded, encoded.rstrip("=")))
    forms.update(_base64_cores(raw))
    return {form for form in forms if len(form) >= _SHORTEST_SECRET}


class Scrubber:
    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for secret in secrets if secret for form in forms_of(secret)}
        ordered = sorted(forms, key=lambda f: (-len(f), f))  # longest first
        alternatives = "|".join(re.escape(form) for form in ordered)
        self._known = re.compile(f"(?=({alternatives}))") if ordered else None

    def scrub(self, text: str) -> str:
        spans: list[tuple[int, int]] = []
        if self._known is not None:
            spans.extend(m.span(1) for m in self._known.finditer(text))
        for pattern, group in _SHAPES:
            spans.extend(m.span(group) for m in pattern.finditer(text))
        if not spans:
            return text
        out, cursor = [], 0
        for start, end in _merged(spans):
            out.append(text[cursor:start])
            out.append(BLANK)
            cursor = end
        out.append(text[cursor:])
        return "".join(out)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def secrets_of(settings: AiSettings) -> set[str]:
    """Provider keys, credentials inside provider and MCP URLs, MCP credential headers."""
    found = {key for provider in settings.providers for key in provider.keys}
    urls = [provider.base_url for provider in settings.providers]
    if settings.mcp is not None:
        for server in settings.mcp.servers:
            urls.append(server.url)
            for name, value in server.headers.items():
                if _CREDENTIAL_HEADER.search(name):
                    found.add(value)
                    found.add(value.partition(" ")[2] if " " in value else value)
    for url in urls:
        parts = urlsplit(url)
        found.update(unquote(part) for part in (parts.username, parts.password) if part)
        found.update(value for _, value in parse_qsl(parts.query))
    return {secret for secret in found if len(secret) >= _SHORTEST_SECRET}


# ----- the process's scrubber ---------------------------------------------------------
_remembered: set[str] = set()
_current = Scrubber(())


def remember(settings: AiSettings) -> None:
    """Add the secrets of a (re)loaded `ai:` section. Secrets of an older config stay:
    a call that started before the reload may still hear its key echoed."""
    global _current
    fresh = secrets_of(settings) - _remembered
    if fresh:
        _remembered.update(fresh)
        _current = Scrubber(_remembered)


def scrub(text: str) -> str:
    return _current.scrub(text)


class _ScrubLogRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format call: keep what it said, scrubbed
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


_LOG_FILTER = _ScrubLogRecords()


def install_log_filter() -> None:
    """Scrub every record the process writes: pygate's handlers, the root logger's and
    logging's last resort (where aiohttp's "Error handling request" tracebacks go)."""
    handlers = [*logging.getLogger("pygate").handlers, *logging.getLogger().handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if _LOG_FILTER not in handler.filters:
            handler.addFilter(_LOG_FILTER)
