"""The Plugin base class a Python plugin subclasses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

if TYPE_CHECKING:
    from pygate.plugins.python.request import Request
    from pygate.plugins.python.response import Response

PHASES = ("access", "response", "log")


class Refuse(Exception):  # noqa: N818 (a verb, like the answer it asks for)
    """Raise in `access` or `response` to refuse the call with the gateway's own JSON error
    (`{"error": {"status", "kind", "message", "request_id"}}`); `kind` (snake_case) is
    stored as the call's error_kind. A refusal is an answer, not a failure: nothing is
    logged as a plugin error.
    """

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{status} {kind}: {message}")
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = headers


class NoConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The config of a plugin that takes none: only `{}` or nothing is accepted."""


class Plugin:
    """Subclass and implement any of the three phases as `async def`.

    One instance is made per route that names the plugin (with that route's config),
    and lives until a reload changes that route's config for it.
    """

    Config: ClassVar[type[msgspec.Struct]] = NoConfig

    def __init__(self, config: Any) -> None:
        self.config = config

    async def access(self, request: Request) -> Response | None:
        """Before proxying: return a Response to answer directly, or change `request`."""
        return None

    async def response(self, request: Request, response: Response) -> None:
        """After the upstream answered: change `response` (body only if not None)."""

    async def log(self, record: dict[str, Any]) -> None:
        """After the call record is finished (fire and forget)."""


def implemented_phases(cls: type[Plugin]) -> frozenset[str]:
    return frozenset(p for p in PHASES if getattr(cls, p) is not getattr(Plugin, p))
