"""Azure OpenAI: OpenAI's format, addressed by deployment and api-version.

    POST {base_url}/openai/deployments/{deployment}/chat/completions?api-version=V
    api-key: KEY

The "model" of `azure/NAME` is the deployment name.
"""

from __future__ import annotations

from urllib.parse import quote

from pygate.ai.providers.base import join_url
from pygate.ai.providers.openai import OpenAIAdapter
from pygate.config.ai_schema import Provider
from pygate.config.providers import BY_KIND

DEFAULT_API_VERSION = BY_KIND["azure"].default_api_version


class AzureAdapter(OpenAIAdapter):
    kind = "azure"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"api-key": key}

    def _url(self, provider: Provider, deployment: str, operation: str) -> str:
        version = provider.api_version or DEFAULT_API_VERSION
        path = f"/openai/deployments/{quote(deployment, safe='')}/{operation}"
        return join_url(provider.base_url, path) + f"?api-version={quote(version)}"

    def chat_url(self, provider: Provider, model: str) -> str:
        return self._url(provider, model, "chat/completions")

    def embeddings_url(self, provider: Provider, model: str) -> str:
        return self._url(provider, model, "embeddings")


ADAPTER = AzureAdapter()
