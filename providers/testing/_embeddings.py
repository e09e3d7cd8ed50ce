"""What the fakes share to serve embeddings: deterministic vectors and the request flow
(`POST /v1/embeddings` on the OpenAI fake, `POST /api/embed` on the Ollama fake)."""

from __future__ import annotations

import abc
import base64
import hashlib
import math
import sys
from array import array

from providers.testing._chat import ChatFake
from providers.testing._server import RecordedRequest, Response

EMBEDDING_DIMENSIONS = 16  # the fakes' vectors, unless the request asks for others


def fake_vector(item: str | list[int], dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The fakes' embedding of a text (or token ids): derived from its hash, unit length,
    each value exactly a float32 (the same whether sent as floats or base64)."""
    seed = (item if isinstance(item, str) else ",".join(map(str, item))).encode()
    raw = b"".join(
        hashlib.sha256(b"%d:%s" % (block, seed)).digest() for block in range(dimensions // 8 + 1)
    )
    words = (int.from_bytes(raw[4 * i : 4 * i + 4], "little") for i in range(dimensions))
    values = [w / 2**31 - 1 for w in words]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return array("f", [v / norm for v in values]).tolist()


def base64_vector(vector: list[float]) -> str:
    """OpenAI's base64 encoding of an embedding: little-endian float32."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


class EmbeddingFake(ChatFake):
    """The flow of an embeddings route: auth, scripted errors and delays, then vectors."""

    def embedding_problem(self, body: dict) -> str | None:
        """Why the vendor would refuse this body, or None."""
        return None if body.get("model") else "model is required"

    @abc.abstractmethod
    def embedding_payload(self, body: dict, vectors: list[list[float]], tokens: int) -> dict:
        """The vendor's answer carrying `vectors` and the `tokens` counted."""

    async def handle(self, request: RecordedRequest, response: Response) -> None:
        if request.method != "POST" or not self.embed_path or request.path != self.embed_path:
            await super().handle(request, response)
            return
        script = await self.scripted(request, response)
        if script is None:
            return
        body = request.body if isinstance(request.body, dict) else {}
        problem = self.embedding_problem(body)
        if problem:
            self.send_error(response, 400, problem)
            return
        items = _embedding_inputs(body.get("input"))
        dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
        vectors = [fake_vector(item, dimensions) for item in items]
        if script.usage is not None:
            tokens = script.usage[0]
        else:
            tokens = sum(self.words(i) if isinstance(i, str) else len(i) for i in items)
        response.send_json(200, self.embedding_payload(body, vectors, tokens))


def _embedding_inputs(value: object) -> list:
    """`input` as a list of items: a text or a token-id array is one item."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]
    return list(value) if isinstance(value, list) else []


def valid_inputs(value: object, *, token_ids: bool) -> bool:
    items = _embedding_inputs(value)
    if not items:
        return False
    if all(isinstance(i, str) and i for i in items):
        return True
    return token_ids and all(
        isinstance(i, list) and i and all(isinstance(t, int) for t in i) for i in items
    )
