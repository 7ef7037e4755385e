"""The `ai:` section of the gateway config (msgspec Structs; defaults live here).

ai:
  listen: 127.0.0.1:0            # internal listener; only the core talks to it
  providers:
    - {name: openai, kind: openai, base_url: "https://api.openai.com", keys: [...]}
  models:                        # aliases: what callers put in "model"
    - name: fast
      deployments: [{model: openai/gpt-4o-mini, weight: 3}, {model: mistral/small}]
      balance: weighted          # weighted | least_busy
      fallbacks: [claude]        # aliases or provider/model, tried in order
  prices: [{model: openai/gpt-4o-mini, input_per_1m: 0.15, output_per_1m: 0.6}]
  limits: [{consumer: alice, tokens_per_minute: 10000, cost_per_day: 5}]
  templates: [...]               # prompt templates as REST APIs
  cache: {ttl: 5m}
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from pygate.config.providers import PROVIDER_KINDS
from pygate.config.units import Duration, ListenAddr, Name, RoutePath, SecretText

Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Money = Annotated[float, msgspec.Meta(ge=0)]
Text = Annotated[str, msgspec.Meta(min_length=1)]

# The accepted `kind` values come from the provider declarations (config/providers.py).
ProviderKindName = Literal[PROVIDER_KINDS]  # type: ignore[valid-type]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Provider(_Section):
    name: Name
    kind: ProviderKindName
    base_url: Text
    # A pool: rotated on 429, a quota error or a refused key (401/403). Use ${ENV} here.
    keys: list[SecretText] = []
    api_version: str | None = None  # api-version query parameter (kinds that declare one)
    timeout: Duration = Duration(60_000)  # whole call; for streams: until the first byte
    stream_idle_timeout: Duration = Duration(30_000)  # between two streamed chunks
    retries: NonNegative = 1  # same provider again on 5xx, timeout, connection error
    key_cooldown: Duration = Duration(30_000)  # a key that got 429 or was refused rests this long


class Deployment(_Section):
    model: Text  # provider/model
    weight: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1


class Alias(_Section):
    name: Text
    deployments: Annotated[list[Deployment], msgspec.Meta(min_length=1)]
    balance: Literal["weighted", "least_busy"] = "weighted"
    fallbacks: list[Text] = []


class Price(_Section):
    model: Text  # provider/model
    input_per_1m: Money = 0.0
    output_per_1m: Money = 0.0


class Limit(_Section):
    # Exactly one of consumer / alias: whose usage the limit counts.
    consumer: str | None = None
    alias: str | None = None
    tokens_per_minute: Positive | None = None
    cost_per_day: Money | None = None
    cost_per_month: Money | None = None


# A variable in a template's prompt or system text: {{name}}.
TEMPLATE_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class TemplateVersion(_Section):
    version: Positive
    prompt: Text  # "Classify the sentiment of: {{text}}"
    system: str | None = None
    # variable name -> type; every variable must be sent, nothing else may be.
    variables: dict[str, Literal["string", "number", "integer", "boolean"]] = {}
    model: str | None = None  # overrides the template's model for this version
    max_tokens: Positive | None = None


class Template(_Section):
    name: Name
    path: RoutePath
    model: Text
    versions: Annotated[list[TemplateVersion], msgspec.Meta(min_length=1)]
    # Which version answers: `active`, or a percentage split {version: percent}.
    active: Positive | None = None
    split: dict[int, Annotated[int, msgspec.Meta(ge=0, le=100)]] = {}
    description: str = ""


class Cache(_Section):
    ttl: Duration = Duration(300_000)
    max_entries: Positive = 10_000


class McpRouteTool(_Section):
    name: Name
    path: Text  # a path served by this gateway, called with the caller's own key
    method: Literal["GET", "POST"] = "GET"
    description: str = ""


class McpServer(_Section):
    name: Name
    url: Text  # an upstream MCP server (streamable HTTP); its tools appear as NAME__tool
    headers: dict[str, str] = {}


class Mcp(_Section):
    templates: bool = True  # every prompt template is a tool
    routes: list[McpRouteTool] = []
    servers: list[McpServer] = []


class AiSettings(_Section):
    listen: ListenAddr = ListenAddr("127.0.0.1:0")
    # key-auth on the AI routes (callers use their pygate consumer keys).
    require_key: bool = True
    providers: list[Provider] = []
    models: list[Alias] = []
    prices: list[Price] = []
    limits: list[Limit] = []
    templates: list[Template] = []
    cache: Cache | None = None
    mcp: Mcp | None = None
    retry_backoff: Duration = Duration(100)  # first pause before a retry; doubles
    # The core's read timeout for the AI listener: covers retries and fallbacks.
    read_timeout: Duration = Duration(300_000)
    buffer: Positive = 100_000  # ai_calls rows held in memory before new ones are dropped
