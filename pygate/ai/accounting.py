"""Tokens and cost of a call: provider usage when there is some; else counted with the
model's tokenizer (tokens.py); else, for models with no known tokenizer, an estimate.

The estimate is the common rule of thumb of four characters per token, over the
prompt's message text and the completion's text; rows with it are marked
`tokens_estimated`. Cost = tokens x the price per million from `ai.prices`.
"""

from __future__ import annotations

from typing import Any

from pygate.ai import tokens
from pygate.ai.providers.base import Produced, Usage, text_of
from pygate.config.ai_schema import Price

CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    return max(1, (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN) if chars else 0


def prompt_chars(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages", []):
        total += len(text_of(message.get("content")))
        for call in message.get("tool_calls") or ():
            total += len(call.get("function", {}).get("arguments") or "")
    inputs = body.get("input")
    if isinstance(inputs, str):
        total += len(inputs)
    elif isinstance(inputs, list):
        total += sum(len(i) for i in inputs if isinstance(i, str))
    return total


def estimated_usage(body: dict[str, Any], completion_chars: int) -> Usage:
    return Usage(estimate_tokens(prompt_chars(body)), estimate_tokens(completion_chars))


def counted_usage(model: str, body: dict[str, Any], produced: Produced) -> tuple[Usage, bool]:
    """The usage of a call the provider did not count, and whether it is an estimate: the
    tokenizer's count when both sides can be counted for `model`, else the estimate."""
    prompt = tokens.prompt_tokens(model, body)
    completion = tokens.completion_tokens(model, produced) if prompt is not None else None
    if prompt is None or completion is None:
        return estimated_usage(body, produced.chars), True
    return Usage(prompt, completion), False


def prompt_for_limits(model: str, body: dict[str, Any]) -> int:
    """Prompt tokens a call will spend, for the tokens-per-minute check before it: the
    same count as `counted_usage`'s (its estimate for models with no tokenizer)."""
    counted = tokens.prompt_tokens(model, body)
    return counted if counted is not None else estimate_tokens(prompt_chars(body))


class PriceTable:
    def __init__(self, prices: list[Price]) -> None:
        self._prices = {p.model: p for p in prices}

    def cost(self, qualified_model: str, usage: Usage) -> float:
        price = self._prices.get(qualified_model)
        if price is None:
            return 0.0
        return (
            usage.prompt_tokens * price.input_per_1m + usage.completion_tokens * price.output_per_1m
        ) / 1_000_000


def usage_of(answer: dict[str, Any]) -> Usage | None:
    """The usage a provider reported in a unified (OpenAI-format) answer, if any."""
    usage = answer.get("usage")
    if not usage:
        return None
    return Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
