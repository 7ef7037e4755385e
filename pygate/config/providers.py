"""What each AI provider kind needs from its config: one declaration per provider.

Config validation reads these (the `kind` values `ai.providers[].kind` accepts, and
which kinds need keys); the adapters in pygate/ai/providers/ read them too (an adapter
takes its `kind` and defaults from here). They live in pygate.config, not next to the
adapters, because checking a config must import nothing of the AI runtime
(tests/test_imports.py): pygate.ai pulls in aiohttp and the log shipper.

Adding a provider: one `ProviderKind` below, one adapter module
`pygate/ai/providers/<kind>.py` defining `ADAPTER`, and its test
`tests/test_provider_<kind>.py`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProviderKind:
    name: str  # the `kind:` value, and the module name under pygate/ai/providers/
    needs_keys: bool = True  # False: servers without authentication are allowed
    # Providers addressed with an api-version query parameter (ai.providers[].api_version);
    # the value sent when the config sets none. None: the kind has no API version.
    default_api_version: str | None = None


# The order is the order error messages list the accepted kinds in.
PROVIDERS: tuple[ProviderKind, ...] = (
    ProviderKind("openai"),
    ProviderKind("azure", default_api_version="2024-10-21"),
    ProviderKind("anthropic"),
    ProviderKind("gemini"),
    ProviderKind("mistral"),
    ProviderKind("openai_compatible", needs_keys=False),
)

BY_KIND: dict[str, ProviderKind] = {declared.name: declared for declared in PROVIDERS}
PROVIDER_KINDS: tuple[str, ...] = tuple(BY_KIND)
