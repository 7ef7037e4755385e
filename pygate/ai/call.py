"""One AI call, whichever endpoint asked: chat, messages, embeddings, templates, MCP tools.

    call = service.begin(request, endpoint, alias, streamed)  # consumer, request id, the row
    with call.recorded():                                      # the endpoint's own checks
        check_chat(body)
    answer = await call.run(CHAT, body)     # plan -> limits -> cache -> engine (-> finish)
    await call.relay(answer, sink)          # a stream only: sent, then finished

The endpoints only read and write HTTP and translate formats (chat.py, messages.py,
template_handler.py, mcp.py, app.py); what an AI call is happens here, once. Every call
is finished exactly once, however it ends: tokens (the provider's, else counted with the
model's tokenizer, else estimated),
cost, the limits' charge and its pygate.ai_calls row. A refusal before any provider was
asked (bad shape, unknown model, a spent budget) is a call too, and so is recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from pygate.ai.accounting import counted_usage, prompt_for_limits, usage_of
from pygate.ai.calllog import AiCall
from pygate.ai.engine import OpenStream
from pygate.ai.errors import AiError
from pygate.ai.providers.base import Produced, StreamError, StreamTranslator, Usage
from pygate.ai.router import Candidate

if TYPE_CHECKING:
    from pygate.ai.service import AiService

# What the engine is asked for. Only chat answers are cached: the cache is documented
# (README, cache.py) as the exact-match cache of non-streamed chat calls.
CHAT, EMBEDDINGS = "chat", "embeddings"


class StreamSink(Protocol):
    """Where a streamed answer goes, in the caller's format (chat.py's `SseOut`)."""

    async def prepare(self) -> None: ...  # the answer's status and headers go out
    async def send(self, chunks: list[dict[str, Any]]) -> None: ...
    async def end(self, translator: StreamTranslator) -> None: ...
    async def broke(self, message: str) -> None: ...  # must not raise when the caller left


class Call:
    def __init__(self, service: AiService, row: AiCall) -> None:
        self.service = service
        self.row = row  # its pygate.ai_calls row, filled in as the call goes
        self.started = time.monotonic()
        self.limit_headers: dict[str, str] = {}
        self.body: dict[str, Any] = {}  # the unified request, for counted tokens

    @contextmanager
    def recorded(self) -> Iterator[None]:
        """An AiError raised inside ends the call: it is recorded, then raised on."""
        try:
            yield
        except AiError as error:
            self.finish(None, Produced(), error)
            raise

    async def run(self, kind: str, body: dict[str, Any]) -> dict[str, Any] | OpenStream:
        """The answer (unified format), finished; or, when the call was begun streamed,
        the opened stream, to `relay`. Raises the call's AiError, recorded."""
        self.body = body
        with self.recorded():
            plan = self.service.plan(body.get("model"))
            limits = self.service.limits
            # The prompt's tokens count against the limit before the call; only a limit
            # with tokens_per_minute needs them (counted for the first choice's model).
            prompt = 0
            if limits.limits_tokens(self.row.consumer, self.row.alias):
                prompt = prompt_for_limits(plan[0].model, body)
            self.limit_headers = await limits.check_shared(
                self.row.consumer, self.row.alias, prompt
            )
            if self.row.streamed:
                return await self.service.engine.open_stream(self.row, plan, body)
            if kind == EMBEDDINGS:
                _, result = await self.service.engine.embeddings(self.row, plan, body)
            else:
                result = await self._chat(plan, body)
        usage = usage_of(result)
        if kind == EMBEDDINGS and usage is not None and not usage.prompt_tokens:
            usage = None  # some providers report no tokens for embeddings: count them
        self.finish(usage, Produced() if kind == EMBEDDINGS else Produced.of_completion(result))
        return result

    async def _chat(self, plan: list[Candidate], body: dict[str, Any]) -> dict[str, Any]:
        cache = self.service.cache
        if cache is None:
            _, completion = await self.service.engine.chat(self.row, plan, body)
            return completion
        key = cache.key(self.row.consumer, CHAT, body)
        hit = cache.get(key)
        if hit is not None:
            self.row.cache_hit = True
            self.row.provider, completion = hit
            self.row.model = completion["model"]
            return completion
        candidate, completion = await self.service.engine.chat(self.row, plan, body)
        cache.put(key, (candidate.provider.name, completion))
        return completion

    async def relay(self, opened: OpenStream, sink: StreamSink) -> None:
        """Send an opened stream to `sink`, then finish the call. Nothing is retried
        here: the caller has bytes. A stream that breaks off ends with the sink's error
        event (502 stream_interrupted); a caller who leaves is recorded as 499."""
        failure: AiError | None = None
        try:
            await sink.prepare()
            self.row.ttft_ms = (time.monotonic() - self.started) * 1000
            await sink.send(opened.first_chunks)
            async for chunks in opened.rest:
                await sink.send(chunks)
            await sink.end(opened.translator)
        except (StreamError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
            message = str(exc) or type(exc).__name__  # AiError scrubs it
            message = f"the provider stream broke off: {message}"
            failure = AiError(502, "stream_interrupted", message)
            await sink.broke(failure.message)
        except ConnectionResetError:
            failure = AiError(499, "client_closed", "the caller went away mid-stream")
        finally:
            opened.response.close()
            translator = opened.translator
            self.finish(translator.usage, translator.produced, failure)

    def headers(self) -> dict[str, str]:
        """What a chat answer tells its caller: limits left, who answered, how."""
        headers = dict(self.limit_headers)
        row = self.row
        headers["X-Pygate-Model"] = f"{row.provider}/{row.model}"
        if row.fallback_used:
            headers["X-Pygate-Fallback"] = row.fallback_used
        if row.cache_hit:
            headers["X-Pygate-Cache"] = "hit"
        return headers

    def finish(self, usage: Usage | None, produced: Produced, error: AiError | None = None) -> None:
        """Account for the call (tokens, cost, limits) and queue its ai_calls row."""
        row = self.row
        row.latency_ms = (time.monotonic() - self.started) * 1000
        if not row.streamed and not row.ttft_ms:
            row.ttft_ms = row.latency_ms
        if error is not None:
            row.status = error.status
            row.error = f"{error.kind}: {error.message}"[:2000]
        # A provider answered (or streamed part of an answer) but sent no usage: count the
        # request and what was produced with the model's tokenizer, else estimate.
        answered = (row.attempts > 0 and row.status < 400) or produced.chars > 0
        if usage is None and answered:
            usage, row.tokens_estimated = counted_usage(row.model, self.body, produced)
        if usage is not None:
            row.prompt_tokens, row.completion_tokens = usage.prompt_tokens, usage.completion_tokens
            if not row.cache_hit:
                row.cost_usd = self.service.prices.cost(f"{row.provider}/{row.model}", usage)
        tokens = row.prompt_tokens + row.completion_tokens
        self.service.limits.charge(row.consumer, row.alias, tokens, row.cost_usd)
        self.service.buffer.add(row)
