"""Any OpenAI-compatible server (vLLM, Ollama, LM Studio): OpenAI's paths and format.

`keys` may be empty for servers without authentication. Not every such server knows
`stream_options`; those that do not simply send no usage, and the call is estimated.
"""

from __future__ import annotations

from pygate.ai.providers.openai import OpenAIAdapter


class OpenAICompatibleAdapter(OpenAIAdapter):
    kind = "openai_compatible"


ADAPTER = OpenAICompatibleAdapter()
