"""The admin token: configured, or generated at first start and kept in a file.

With `admin.auth: token` (the default) and neither `admin.token` nor `admin.tokens`
set, `pygate serve` generates a random token at first start, writes it to
`admin.token_file` (default `pygate-admin.token` in the directory of `admin.state`,
so next to the config file unless the state lives elsewhere; mode 0600, created
exclusively) and prints it once. Later starts read it again. The CLI commands
that talk to the admin listener (status, logs query/report, admin export/import,
bench --save) read the same file, so they need no flag. A token file that others can
read (group or world bits set) is refused, as ssh refuses such a key.

`admin.auth: none` turns the token off; the config loader allows it on a loopback
listen only (pygate/config/admin_checks.py).
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, field

from pygate.config import LoadedConfig
from pygate.config.state_url import is_postgres

GENERATED_ACTOR = "admin"


class AdminTokenError(Exception):
    """The token file cannot be read, written or trusted; the message says what to do."""


@dataclass(frozen=True, slots=True)
class AdminCredentials:
    token: str | None  # admin.token or the generated one; actor "admin"
    named: dict[str, str] = field(default_factory=dict)  # admin.tokens: token -> name
    required: bool = True  # False only with admin.auth: none
    generated_now: bool = False  # this start created the token file


DEFAULT_TOKEN_FILE = "pygate-admin.token"


def token_file_path(loaded: LoadedConfig) -> str:
    """admin.token_file, else pygate-admin.token next to the admin state (admin.state)."""
    base_dir = os.path.dirname(loaded.abspath)
    admin = loaded.config.admin
    if admin.token_file:
        return os.path.join(base_dir, os.path.expanduser(admin.token_file))
    if is_postgres(admin.state):  # the state is not a file: the token sits by the config
        return os.path.join(base_dir, DEFAULT_TOKEN_FILE)
    state_dir = os.path.dirname(os.path.join(base_dir, os.path.expanduser(admin.state)))
    return os.path.join(state_dir, DEFAULT_TOKEN_FILE)


def _uses_generated_token(loaded: LoadedConfig) -> bool:
    admin = loaded.config.admin
    return admin.auth == "token" and not admin.token and not admin.tokens


def server_credentials(loaded: LoadedConfig) -> AdminCredentials:
    """What the admin listener accepts; generates the token file when it is needed."""
    admin = loaded.config.admin
    named = {t.token: t.name for t in admin.tokens}
    if admin.auth == "none":
        return AdminCredentials(None, {}, required=False)
    if not _uses_generated_token(loaded):
        return AdminCredentials(admin.token or None, named)
    path = token_file_path(loaded)
    token = read_token_file(path)
    if token is not None:
        return AdminCredentials(token)
    token = secrets.token_urlsafe(32)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another start won the race: use its token
        existing = read_token_file(path)
        if existing is None:
            raise AdminTokenError(f"admin token file {path} vanished while starting") from None
        return AdminCredentials(existing)
    except OSError as exc:
        raise AdminTokenError(f"cannot create the admin token file {path}: {exc}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return AdminCredentials(token, generated_now=True)


def client_token(loaded: LoadedConfig) -> str | None:
    """The token a CLI command sends to the gateway of `loaded` (None: none is needed,
    or the gateway has not generated one yet)."""
    admin = loaded.config.admin
    if admin.auth == "none":
        return None
    if admin.token:
        return admin.token
    if admin.tokens:
        return admin.tokens[0].token
    return read_token_file(token_file_path(loaded))


def read_token_file(path: str) -> str | None:
    """The token in `path`; None if there is no such file. Raises AdminTokenError."""
    try:
        info = os.stat(path)
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AdminTokenError(
                f"admin token file {path} is accessible by others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}): run chmod 600 {path}"
            )
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AdminTokenError(f"cannot read the admin token file {path}: {exc}") from exc
    if not token:
        raise AdminTokenError(f"admin token file {path} is empty: delete it to generate one")
    return token
