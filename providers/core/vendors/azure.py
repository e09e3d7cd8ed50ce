"""Azure OpenAI: OpenAI's protocol under Azure's URL scheme and key header.

A deployment is addressed as `{base_url}/openai/deployments/{model}/chat/completions
?api-version=...`, the model being the deployment's name, with the key in `api-key`.
Only stored connections use this kind (`kind: azure_openai`, `api_version`).
"""

from __future__ import annotations

from urllib.parse import quote

from providers.core.base import ProviderConfig
from providers.core.vendors.openai import OpenAIProvider

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIProvider(OpenAIProvider):
    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._http.headers.pop("Authorization", None)
        if config.api_key:
            self._http.headers["api-key"] = config.api_key
        self._api_version = config.options.get("api_version") or DEFAULT_API_VERSION
        # Azure's chat API takes max_tokens (and newer versions max_completion_tokens).
        self._max_tokens_field = "max_tokens"

    def _url(self, path: str, model: str) -> str:
        deployment = quote(model or self.default_model, safe="")
        return f"{self._base}/openai/deployments/{deployment}{path}?api-version={self._api_version}"

    async def list_models(self) -> list[str]:
        # The data-plane API lists no deployments: a connection names its models.
        return [self.default_model] if self.default_model else []
