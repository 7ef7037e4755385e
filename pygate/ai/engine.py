"""Calling providers: key rotation, retries with backoff, fallbacks, timeouts.

For each candidate of the plan (first choice, then the alias's fallbacks):
- 429 / quota / auth errors rest the key and try the provider's next key at once;
  when every key rests, the next candidate is tried;
- 5xx, timeouts and connection errors are retried on the same candidate
  (`retries`, pausing `retry_backoff`, doubling), then the next candidate is tried;
- any other 4xx is the caller's mistake: returned as is, no fallback.
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
from pygate.ai.config import AiSettings
from pygate.ai.errors import AiError
from pygate.ai.keys import KeyPool
from pygate.ai.providers import ADAPTERS
from pygate.ai.providers.base import (
    FATAL,
    RATE_LIMITED,
    RETRYABLE,
    StreamError,
    StreamTranslator,
)
from pygate.ai.router import Candidate, ModelRouter
from pygate.ai.sse import read_events

T = TypeVar("T")


class ProviderFailure(Exception):
    def __init__(self, status: int, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


@dataclass(slots=True)
class OpenStream:
    candidate: Candidate
    translator: StreamTranslator
    first_chunks: list[dict[str, Any]]
    rest: AsyncIterator[list[dict[str, Any]]]
    response: aiohttp.ClientResponse


class Engine:
    def __init__(self, settings: AiSettings, session: aiohttp.ClientSession) -> None:
        self.router = ModelRouter(settings)
        self.session = session
        self.pools = {p.name: KeyPool(p.keys, p.key_cooldown / 1000) for p in settings.providers}
        self.backoff_s = settings.retry_backoff / 1000
        self._secrets = [k for pool in self.pools.values() for k in pool.secrets()]

    def scrub(self, text: str) -> str:
        """Provider error text with any of our keys blanked out (some providers echo them)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # ----- the attempt loop --------------------------------------------------------------
    async def run(
        self,
        call: AiCall,
        plan: list[Candidate],
        attempt: Callable[[Candidate, str], Awaitable[T]],
    ) -> tuple[Candidate, T]:
        last: ProviderFailure | None = None
        for position, candidate in enumerate(plan):
            provider = candidate.provider
            pool = self.pools[provider.name]
            retries_left, rotations_left = provider.retries, len(pool.keys)
            backoff = self.backoff_s
            call.provider, call.model = provider.name, candidate.model
            while True:
                index = pool.take()
                if index is None:
                    last = last or ProviderFailure(429, RATE_LIMITED, "every key is resting")
                    break
                call.attempts += 1
                self.router.started(candidate)
                try:
                    result = await attempt(candidate, pool.key(index))
                except ProviderFailure as failure:
                    last = failure
                    if failure.kind == FATAL:
                        raise AiError(failure.status, "provider_error", failure.message) from None
                    if failure.kind == RATE_LIMITED:
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
        assert last is not None
        status = 429 if last.kind == RATE_LIMITED else (504 if last.status == 504 else 502)
        kind = "provider_rate_limited" if status == 429 else "provider_unavailable"
        raise AiError(status, kind, f"no provider could answer: {last.message}")

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
        message = self.scrub(adapter.error_message(body))
        text = f"{candidate.qualified} answered {status}: {message}"
        return ProviderFailure(status, adapter.classify(status, body), text, retry_after)

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
