"""The fake OpenAI upstream for benchmarks: `providers.testing.fakes.FakeOpenAI`, standalone.

Same server as `python -m providers.testing.fakes --vendor openai`, with one change for
long runs: the fake records every request it receives (tests read that log), which under
tens of thousands of requests per second grows without bound and makes the garbage
collector pause the fake for tens of milliseconds, polluting the baseline's p99. Here the
log keeps only the last few requests.

    PYTHONPATH=. python bench/upstream.py --port 9999
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import threading

from providers.testing.fakes import FakeOpenAI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI upstream for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    fake = FakeOpenAI(host=args.host, port=args.port)
    fake.requests = collections.deque(maxlen=100)  # type: ignore[assignment]
    with fake:
        print(f"fake openai listening on {fake.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
