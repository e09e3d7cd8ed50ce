"""The fake OpenAI upstream for benchmarks: `providers.testing.fakes.FakeOpenAI`, standalone.

Same server as `python -m providers.testing.fakes --vendor openai`, with one change for
long runs: the fake records every request it receives (tests read that log), which under
tens of thousands of requests per second grows without bound and makes the garbage
collector pause the fake for tens of milliseconds, polluting the baseline's p99. Here the
log keeps only the last few requests.

    PYTHONPATH=. python bench/upstream.py --port 9999
    PYTHONPATH=. python bench/upstream.py --chunks 20 --chunk-delay 0.1   # slow streams

With `--chunks`, every answer not scripted otherwise streams in that many pieces,
`--chunk-delay` seconds apart (a model taking its time, for concurrent-stream runs).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import threading

from providers.testing._server import Script
from providers.testing.fakes import FakeOpenAI


class PacedOpenAI(FakeOpenAI):
    """Answers every request with the same paced stream."""

    def __init__(self, *, chunks: int, chunk_delay: float, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        words = " ".join(f"w{i}" for i in range(chunks))
        self._paced = Script(text=words, chunks=chunks, chunk_delay=chunk_delay)

    def next_script(self) -> Script | None:
        return super().next_script() or self._paced


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI upstream for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=0, help="pace every answer: pieces")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds per piece")
    args = parser.parse_args(argv)
    if args.chunks:
        fake: FakeOpenAI = PacedOpenAI(
            chunks=args.chunks, chunk_delay=args.chunk_delay, host=args.host, port=args.port
        )
    else:
        fake = FakeOpenAI(host=args.host, port=args.port)
    fake.requests = collections.deque(maxlen=100)  # type: ignore[assignment]
    with fake:
        print(f"fake openai listening on {fake.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
