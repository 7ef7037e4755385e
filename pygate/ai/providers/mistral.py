"""Mistral: OpenAI's wire format at /v1/chat/completions and /v1/embeddings.

Differences that matter here: Mistral sends usage in the last chunk of every stream
by itself and refuses OpenAI-only request fields, so those are dropped.
"""

from __future__ import annotations

from pygate.ai.providers.openai import OpenAIAdapter


class MistralAdapter(OpenAIAdapter):
    kind = "mistral"
    supports_stream_options = False
    drop_fields = ("stream_options", "user", "logprobs", "top_logprobs", "n", "logit_bias")


ADAPTER = MistralAdapter()
