"""Embeddings over OpenAI's protocol (`POST /embeddings`): OpenAI and the compatible
servers (vLLM, TEI, LM Studio). A mixin of `OpenAIProvider`, whose client, base URL and
error translation it uses."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from array import array
from collections.abc import Sequence
from typing import Any

from providers.core.errors import ProviderUpstreamError
from providers.core.types import EmbeddingRequest, EmbeddingResult, Usage


class OpenAIEmbeddings:
    max_embedding_inputs = 2048  # OpenAI's limit per request
    embeds_token_ids = True  # the protocol takes token-id arrays as input too

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """POST /embeddings. OpenAI is asked for base64 (packed float32: no float parsing,
        a third of the bytes), as its SDK does; compatible servers for plain floats,
        which all of them speak."""
        model = request.model or self.default_model
        body: dict[str, Any] = {
            "model": model,
            "input": [list(i) if isinstance(i, tuple) else i for i in request.inputs],
            "encoding_format": "base64" if self.config.kind == "openai" else "float",
        }
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            response = await self._http.post(self._base + "/embeddings", content=content)
            if response.status_code >= 400:
                raise self._status_error(response, response.content)
            data = response.json()
            vectors = _vectors(data, len(request.inputs), self.name)
        except Exception as exc:
            raise self._error(exc, streaming=False) from exc
        return EmbeddingResult(
            vectors=vectors,
            usage=Usage(input_tokens=_int((data.get("usage") or {}).get("prompt_tokens"))),
            model=data.get("model") or model,
        )


def _vectors(data: Any, count: int, provider: str) -> tuple[Sequence[float], ...]:
    """The embeddings of an /embeddings answer, put in input order by their `index`."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != count:
        raise _bad_embeddings(provider, f"embeddings that do not match the {count} inputs")
    vectors: list[Sequence[float] | None] = [None] * count
    for position, item in enumerate(items):
        index = item.get("index", position) if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or vectors[index] is not None:
            raise _bad_embeddings(provider, "embedding indexes that do not match the inputs")
        vectors[index] = _vector(item.get("embedding"), provider)
    return tuple(v for v in vectors if v is not None)


def _vector(raw: object, provider: str) -> Sequence[float]:
    if isinstance(raw, list):
        return raw
    if isinstance(raw, str):  # base64 of little-endian float32
        try:
            packed: bytes | None = base64.b64decode(raw, validate=True)
        except binascii.Error:
            packed = None
        if packed is None or len(packed) % 4:
            raise _bad_embeddings(provider, "an embedding that is not base64 of float32")
        vector = array("f", packed)
        if sys.byteorder == "big":
            vector.byteswap()
        return vector
    raise _bad_embeddings(provider, "an embedding that is neither floats nor base64")


def _bad_embeddings(provider: str, what: str) -> ProviderUpstreamError:
    return ProviderUpstreamError(f"Provider '{provider}' answered {what}", provider=provider)


def _int(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0
