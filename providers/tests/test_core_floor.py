"""The LLM core runs without Django, the project's packages or telemetry libraries:
they are handed in (`TurnOptions.observe`), never imported."""

from __future__ import annotations

import subprocess
import sys

CORE = (
    "providers.types",
    "providers.errors",
    "providers.base",
    "providers.wrapper",
    "providers.retry",
    "providers.observed",
    "providers.loop",
    "providers.descriptors",
    "providers.registry",
)


def test_the_core_imports_nothing_from_above():
    code = (
        f"import sys\nfor name in {CORE!r}: __import__(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'django', 'rest_framework', 'channels', 'llmwrapper', 'chats', 'tenants', "
        "'tools', 'memories', 'pipeline', 'opentelemetry', 'prometheus_client'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
