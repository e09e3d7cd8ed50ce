"""Fake vendor servers for tests and benchmarks (no Django needed)."""

from providers.testing._embeddings import fake_vector
from providers.testing._server import RecordedRequest, Script
from providers.testing.fakes import FakeAnthropic, FakeOllama, FakeOpenAI, fake_for

__all__ = [
    "FakeAnthropic",
    "FakeOllama",
    "FakeOpenAI",
    "RecordedRequest",
    "Script",
    "fake_for",
    "fake_vector",
]
