"""The AI gateway: one OpenAI-compatible API over many model providers.

Design
------
Where it runs. An aiohttp app in the `pygate serve` process, on the same uvloop loop as
the admin listener, bound to an internal loopback listener (`ai.listen`, port 0 by
default; the socket is bound before the core's config is compiled, see `lifecycle.py`:
serve keeps the `AiRuntime` and compiles every core config with its `listener`).
The `ai:` section's schema, checks and core routes are data in pygate/config
(`ai_schema.py`, `ai_checks.py`, `ai_routes.py`): loading a config never imports this
package. The config compiler adds an internal upstream `pygate-ai`
pointing at the listener and core routes for the AI paths (/v1/chat/completions, /v1/embeddings,
/v1/models, /v1/messages, each template's path, /mcp). So the Rust core does what it
does for every route: key-auth (callers use their pygate consumer keys), rate limits
and the per-call record in pygate.requests. The AI app reads the consumer from
`X-Consumer-Username`, which the core sets (and strips from clients), and the request
id from `X-Request-Id`. `guard.came_through_core` is the one place that decides
whether a request really came through the core.

A call's life, one `Call` (`call.py`) whichever endpoint made it (chat, messages,
embeddings, templates, MCP tools; the endpoints only translate formats and HTTP):
begin (the consumer, the request id) -> the endpoint's own checks (request bodies
against each endpoint's shape, `request_shapes.py`) -> resolve the model
(`provider/model` or an alias, which is a group of deployments chosen weighted or
least-busy, plus a fallback chain) -> limits and budgets (`limits.py`) -> exact-match
cache (`cache.py`) -> the engine (`engine.py`), for each candidate: a key from the
provider's pool (`keys.py`), the provider adapter (`providers/`, one module per
provider) translates the unified OpenAI-format request, the answer or the streamed
events back. 429/quota and a refused key (401/403) rotate the key; 5xx, timeouts and
connection errors are retried with backoff, then the next fallback is tried. A stream
is never retried once its first byte has been sent to the client. -> finish, exactly
once however the call ended (refusals too). Every error is the gateway's JSON error
(`errors.py`, rendered by the middleware in `app.py` in the caller's API's shape).

Accounting (`accounting.py`, `calllog.py`): tokens from the provider's usage
(`stream_options.include_usage` is forced for OpenAI-compatible streams), estimated
(and marked) when missing; cost from the price table. One row per AI call goes to
pygate.ai_calls (migration 006), joinable with pygate.requests on request_id. Rows are
RowBinary-encoded on the loop (cheap) and shipped by a second `LogShipper` thread, with
its own spool: the same batching, spooling, replay and dedup as the core's records.

Provider keys come from config (with ${ENV}) and are sent only to their provider;
`secrets.py` scrubs them (and every other credential of the `ai:` section, in every
encoding) from error bodies, stream error events, ai_calls rows and log lines.
"""
