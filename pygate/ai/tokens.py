"""Token counts of a call with the model's own tokenizer (the core's, `pygate._core`).

Used when a provider answered without usage (a stream without its usage chunk, a JSON
answer without `usage`) and before a call, for the tokens-per-minute checks. The model is
the provider's model name (`gpt-4o-mini`); OpenAI's models have a tokenizer in the core,
others (Claude, Gemini, Llama...) do not, and every function here answers None for them so
that the caller falls back to the estimate (accounting.py) and marks `tokens_estimated`.

The prompt is counted by OpenAI's published rule for chat messages (core-rs/src/tokens/
chat.rs). A request with tool (function) definitions is not counted here: the API bills
the definitions in a format of its own that no published rule reproduces exactly, so
such a prompt is estimated rather than undercounted.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson

from pygate import _core
from pygate.ai.providers.base import Produced


def warm_up(models: list[str]) -> None:
    """Parse the ranks of the encodings `models` use, on a thread of its own, so that the
    first call that needs a count does not hold the event loop for that (the core parses
    each encoding once, a fraction of a second; see benchmarks/RESULTS.md, tokenizer)."""
    wanted = {e: m for m in models if (e := _core.token_encoding(m)) is not None}
    for model in wanted.values():
        name = f"tokenizer-warm-up-{model}"
        threading.Thread(
            target=_core.count_tokens, args=(model, ""), name=name, daemon=True
        ).start()


def prompt_tokens(model: str, body: dict[str, Any]) -> int | None:
    """Prompt tokens of a chat or embeddings request for `model`, or None."""
    if _core.token_encoding(model) is None:
        return None
    messages = body.get("messages")
    if messages is not None:
        if body.get("tools") or body.get("functions"):
            return None
        return _core.count_chat_tokens(model, orjson.dumps(messages))
    return _input_tokens(model, body.get("input"))


def _input_tokens(model: str, inputs: Any) -> int | None:
    """Embeddings `input`: a text, texts, or token arrays (already tokens: counted as is)."""
    if isinstance(inputs, str):
        return _core.count_tokens(model, inputs)
    if not isinstance(inputs, list) or not inputs:
        return None
    if all(isinstance(i, int) for i in inputs):
        return len(inputs)  # one token array
    total = 0
    for item in inputs:
        if isinstance(item, str):
            count = _core.count_tokens(model, item)
        elif isinstance(item, list) and all(isinstance(i, int) for i in item):
            count = len(item)
        else:
            return None
        if count is None:
            return None
        total += count
    return total


def completion_tokens(model: str, produced: Produced) -> int | None:
    """Completion tokens of what the model produced (every choice), or None."""
    if _core.token_encoding(model) is None:
        return None
    total = 0
    for text, calls in produced.choices():
        count = _core.count_completion_tokens(model, text, calls)
        if count is None:
            return None
        total += count
    return total
