"""Tokens and cost of a call: provider usage when there is some, else an estimate.

The estimate is the common rule of thumb of four characters per token, over the
prompt's message text and the completion's text; rows with it are marked
`tokens_estimated`. Cost = tokens x the price per million from `ai.prices`.
"""

from __future__ import annotations

from typing import Any

from pygate.ai.providers.base import Usage, text_of
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


def completion_text_chars(completion: dict[str, Any]) -> int:
    total = 0
    for choice in completion.get("choices", []):
        message = choice.get("message") or {}
        total += len(message.get("content") or "")
        for call in message.get("tool_calls") or ():
            total += len(call.get("function", {}).get("arguments") or "")
    return total
