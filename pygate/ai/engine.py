"""Calling providers: key rotation, retries with backoff, fallbacks, timeouts.

For each candidate of the plan (first choice, then the alias's fallbacks):
- 429 / quota errors rest the key, and a refused key (401/403, Gemini's
  API_KEY_INVALID) is taken out of the rotation for `key_cooldown`; either way the
  provider's next key is tried at once, and when no key is left, the next candidate;
- 5xx, timeouts and connection errors are retried on the same candidate
  (`retries`, pausing `retry_backoff`, doubling), then the next candidate is tried;
- any other 4xx is the caller's mistake: returned as is, no fallback.
When no candidate answered, the caller gets 429 (with Retry-After) only if every one
was rate limited; 502/504 `provider_unavailable` if one failed in a way a retry may fix;
else (credentials refused) 502 `provider_auth_failed` with `x-should-retry: false`, so
SDKs do not loop on a gateway misconfiguration their caller cannot fix.
A stream counts as open once its first event is in; from then on nothing is retried
(the caller already has bytes), see `open_stream`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson

from pygate.ai.calllog import AiCall
from pygate.ai.errors import AiError
from pygate.ai.keys import KeyPool
from pygate.ai.providers import ADAPTERS
from pygate.ai.providers.base import (
    AUTH_REFUSED,
    FATAL,
    RATE_LIMITED,
    RETRYABLE,
    StreamError,
    StreamTranslator,
    Unsupported,
    Untranslatable,
)
from pygate.ai.router import Candidate, ModelRouter
from pygate.ai.secrets import scrub
from pygate.ai.sse import read_events
from pygate.config.ai_schema import AiSettings

T = TypeVar("T")
_SCRUB_WINDOW = 65_536  # of a provider's error text, searched for secrets
_MESSAGE_CHARS = 500  # of it, passed on to the caller


class ProviderFailure(Exception):
    def __init__(self, status: int, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


@dataclass(slots=True)
class EngineCounters:
    """Kept across reloads (the service owns them); shown in /status and /metrics."""

    provider_auth_failures: int = 0  # provider answers that refused the gateway's key


@dataclass(slots=True)
class OpenStream:
    candidate: Candidate
    translator: StreamTranslator
    first_chunks: list[dict[str, Any]]
    rest: AsyncIterator[list[dict[str, Any]]]
    response: aiohttp.ClientResponse


class Engine:
    def __init__(
        self,
        settings: AiSettings,
        session: aiohttp.ClientSession,
        counters: EngineCounters | None = None,
    ) -> None:
        self.router = ModelRouter(settings)
        self.session = session
        self.pools = {p.name: KeyPool(p.keys, p.key_cooldown / 1000) for p in settings.providers}
        self.backoff_s = settings.retry_backoff / 1000
        self.counters = counters or EngineCounters()

    # ----- the attempt loop --------------------------------------------------------------
    async def run(
        self,
        call: AiCall,
        plan: list[Candidate],
        attempt: Callable[[Candidate, str], Awaitable[T]],
    ) -> tuple[Candidate, T]:
        failures: list[ProviderFailure] = []  # the last failure of each candidate tried
        for position, candidate in enumerate(plan):
            provider = candidate.provider
            pool = self.pools[provider.name]
            retries_left, rotations_left = provider.retries, len(pool.keys)
            backoff = self.backoff_s
            call.provider, call.model = provider.name, candidate.model
            last: ProviderFailure | None = None
            while True:
                index = pool.take()
                if index is None:
                    last = last or _pool_unavailable(candidate, pool)
                    break
                call.attempts += 1
                self.router.started(candidate)
                try:
                    result = await attempt(candidate, pool.key(index))
                except Untranslatable as exc:
                    message = f"{candidate.qualified} cannot take this request: {exc}"
                    raise AiError(400, "bad_request", message) from None
                except Unsupported as exc:  # e.g. embeddings of a chat-only provider
                    raise AiError(400, "unsupported", str(exc)) from None
                except ProviderFailure as failure:
                    last = failure
                    if failure.kind == FATAL:
                        raise AiError(failure.status, "provider_error", failure.message) from None
                    if failure.kind in (RATE_LIMITED, AUTH_REFUSED):
                        if failure.kind == AUTH_REFUSED:
                            self.counters.provider_auth_failures += 1
                            pool.refuse(index)
                            failure.message += f" [key #{index + 1} of provider {provider.name!r}]"
                        else:
                            pool.rest(index, failure.retry_after)
                        rotations_left -= 1
                        if rotations_left > 0:
                            continue
                        break
                    if retries_left > 0:
                        retries_left -= 1
                        await asyncio.sleep(backoff)
                        backoff *= 2
                        continue
                    break
                finally:
                    self.router.finished(candidate)
                if position > 0:
                    # How the config names the fallback: an alias, or provider/model.
                    call.fallback_used = candidate.label
                return candidate, result
            failures.append(last)
        raise self._no_answer(plan, failures)

    def _no_answer(self, plan: list[Candidate], failures: list[ProviderFailure]) -> AiError:
        """What the caller hears when no candidate answered (see the module's doc)."""
        kinds = {failure.kind for failure in failures}
        message = "no provider could answer: " + "; ".join(
            dict.fromkeys(failure.message for failure in failures)
        )
        if kinds == {RATE_LIMITED}:
            # The pools know when their first key is back (a provider's Retry-After included).
            wait = min(self.pools[c.provider.name].unavailable()[1] for c in plan)
            return AiError(429, "provider_rate_limited", message, {"Retry-After": str(wait)})
        if RETRYABLE in kinds:
            timed_out = failures[-1].status == 504
            return AiError(504 if timed_out else 502, "provider_unavailable", message)
        message += (
            ". The caller cannot fix this: the gateway's provider keys (ai.providers[].keys) "
            "need the operator's attention"
        )
        return AiError(502, "provider_auth_failed", message, {"x-should-retry": "false"})

    # ----- one attempt -------------------------------------------------------------------
    async def post_json(
        self, candidate: Candidate, url: str, headers: dict, payload: dict
    ) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=candidate.provider.timeout / 1000)
        try:
            async with self.session.post(
                url, data=orjson.dumps(payload), headers=headers, timeout=timeout
            ) as response:
                raw = await response.read()
                status = response.status
                retry_after = _retry_after(response)
        except TimeoutError:
            raise ProviderFailure(504, RETRYABLE, f"{candidate.qualified} timed out") from None
        except aiohttp.ClientError as exc:
            raise ProviderFailure(502, RETRYABLE, f"{candidate.qualified}: {exc}") from None
        body = _json_or_text(raw)
        if status >= 400:
            raise self._failure(candidate, status, body, retry_after)
        if not isinstance(body, dict):
            raise ProviderFailure(502, RETRYABLE, f"{candidate.qualified}: answer is not JSON")
        return body

    def _failure(
        self, candidate: Candidate, status: int, body: Any, retry_after: float | None
    ) -> ProviderFailure:
        adapter = ADAPTERS[candidate.provider.kind]
        kind = adapter.classify(status, body)
        # Scrubbed before it is cut short: a cut must never halve a key (and hide it).
        message = scrub(adapter.error_message(body)[:_SCRUB_WINDOW])[:_MESSAGE_CHARS]
        if kind == AUTH_REFUSED:
            text = f"{candidate.qualified} refused the gateway's credentials ({status}): {message}"
        else:
            text = f"{candidate.qualified} answered {status}: {message}"
        return ProviderFailure(status, kind, text, retry_after)

    async def chat(self, call: AiCall, plan: list[Candidate], body: dict) -> tuple[Candidate, dict]:
        async def attempt(candidate: Candidate, key: str) -> dict:
            adapter = ADAPTERS[candidate.provider.kind]
            request = adapter.chat_request(candidate.provider, candidate.model, body, key, False)
            data = await self.post_json(candidate, request.url, request.headers, request.json)
            return adapter.chat_response(data, candidate.model)

        return await self.run(call, plan, attempt)

    async def embeddings(
        self, call: AiCall, plan: list[Candidate], body: dict
    ) -> tuple[Candidate, dict]:
        async def attempt(candidate: Candidate, key: str) -> dict:
            adapter = ADAPTERS[candidate.provider.kind]
            request = adapter.embeddings_request(candidate.provider, candidate.model, body, key)
            data = await self.post_json(candidate, request.url, request.headers, request.json)
            return adapter.embeddings_response(data, candidate.model)

        return await self.run(call, plan, attempt)

    async def open_stream(self, call: AiCall, plan: list[Candidate], body: dict) -> OpenStream:
        """Retried and fallen back like `chat` until the first chunk is in hand."""

        async def attempt(candidate: Candidate, key: str) -> OpenStream:
            provider = candidate.provider
            adapter = ADAPTERS[provider.kind]
            request = adapter.chat_request(provider, candidate.model, body, key, True)
            first_s, idle_s = provider.timeout / 1000, provider.stream_idle_timeout / 1000
            try:
                response = await asyncio.wait_for(
                    self.session.post(
                        request.url, data=orjson.dumps(request.json), headers=request.headers
                    ),
                    first_s,
                )
            except TimeoutError:
                raise ProviderFailure(504, RETRYABLE, f"{candidate.qualified} timed out") from None
            except aiohttp.ClientError as exc:
                raise ProviderFailure(502, RETRYABLE, f"{candidate.qualified}: {exc}") from None
            try:
                if response.status >= 400:
                    raw = await asyncio.wait_for(response.read(), first_s)
                    raise self._failure(
                        candidate, response.status, _json_or_text(raw), _retry_after(response)
                    )
                translator = adapter.stream_translator(candidate.model)
                chunks = _translated(read_events(response, first_s, idle_s), translator)
                first = await _first_chunks(chunks, candidate)
            except ProviderFailure:
                response.close()
                raise
            return OpenStream(candidate, translator, first, chunks, response)

        _, opened = await self.run(call, plan, attempt)
        return opened


async def _translated(
    events: AsyncIterator[tuple[str, str]], translator: StreamTranslator
) -> AsyncIterator[list[dict[str, Any]]]:
    async for event, data in events:
        chunks = translator.feed(event, data)
        if chunks:
            yield chunks


async def _first_chunks(
    chunks: AsyncIterator[list[dict[str, Any]]], candidate: Candidate
) -> list[dict[str, Any]]:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        raise ProviderFailure(502, RETRYABLE, f"{candidate.qualified}: empty stream") from None
    except TimeoutError:
        raise ProviderFailure(504, RETRYABLE, f"{candidate.qualified} timed out") from None
    except (StreamError, aiohttp.ClientError, ValueError) as exc:
        message = f"{candidate.qualified} failed before the first token: {exc}"
        raise ProviderFailure(502, RETRYABLE, message) from None


def _pool_unavailable(candidate: Candidate, pool: KeyPool) -> ProviderFailure:
    every_key_refused, wait_s = pool.unavailable()
    name = candidate.provider.name
    if every_key_refused:
        message = (
            f"{candidate.qualified}: the provider refused the gateway's credentials for every "
            f"key of provider {name!r}; refused keys rest for its key_cooldown"
        )
        return ProviderFailure(502, AUTH_REFUSED, message)
    message = f"{candidate.qualified}: every key of provider {name!r} is resting after a 429"
    return ProviderFailure(429, RATE_LIMITED, message, float(wait_s))


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _json_or_text(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")
