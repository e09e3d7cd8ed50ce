"""A fake Azure OpenAI resource: OpenAI's protocol at Azure's deployment URLs
(`/openai/deployments/{deployment}/chat/completions?api-version=...`), its key in the
`api-key` header."""

from __future__ import annotations

import re

from providers.testing._server import RecordedRequest
from providers.testing.fakes import FakeOpenAI

_CHAT = re.compile(r"^/openai/deployments/[^/]+/chat/completions$")


class FakeAzureOpenAI(FakeOpenAI):
    def is_chat_route(self, path: str) -> bool:
        return _CHAT.match(path) is not None

    def is_authorized(self, request: RecordedRequest) -> bool:
        return self.api_key is None or request.headers.get("api-key") == self.api_key

    @property
    def resource_url(self) -> str:
        """What a connection's `base_url` is: the resource, without `/v1`."""
        return self.url
