"""`admin.state` as a Postgres URL: recognised, checked, and shown without its password.

The password must never reach status, logs, API answers or errors: everything that
names the state uses `redacted()`, and `scrub()` blanks it out of driver messages.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")


def is_postgres(state: str) -> bool:
    return state.split("://", 1)[0].lower() in SCHEMES and "://" in state


def problem(state: str) -> str | None:
    """Why `state` (a Postgres URL) is unusable, or None."""
    try:
        url = urlsplit(state)
        url.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"not a usable postgresql:// URL ({exc})"
    if not url.hostname:
        return "a postgresql:// URL needs a host, e.g. postgresql://user:pass@127.0.0.1:5432/pygate"
    if not url.path.strip("/"):
        return "a postgresql:// URL needs a database name after the host, e.g. .../pygate"
    return None


def password(state: str) -> str:
    try:
        return unquote(urlsplit(state).password or "")
    except ValueError:
        return ""


def redacted(state: str) -> str:
    """`state` with its password as ***."""
    try:
        url = urlsplit(state)
        if url.password is None:
            return state
        host = url.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{url.username or ''}:***@{host}" + (f":{url.port}" if url.port else "")
        return urlunsplit((url.scheme, netloc, url.path, url.query, url.fragment))
    except ValueError:
        return "postgresql://(unparsable URL)"


def scrub(text: str, state: str) -> str:
    """`text` with the URL's password (raw and percent-decoded) blanked out."""
    secret = password(state)
    raw = ""
    try:
        raw = urlsplit(state).password or ""
    except ValueError:
        pass
    for value in {secret, raw}:
        if value:
            text = text.replace(value, "***")
    return text
