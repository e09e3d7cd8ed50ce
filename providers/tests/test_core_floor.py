"""The LLM core (`providers/core/`) runs without Django, the project's other packages or
telemetry libraries: they are handed in (`TurnOptions.observe`), never imported."""

from __future__ import annotations

import subprocess
import sys

ABOVE = (
    "django",
    "rest_framework",
    "channels",
    "llmwrapper",
    "chats",
    "tenants",
    "tools",
    "memories",
    "connections",
    "pipeline",
    "surfaces",
    "opentelemetry",
    "prometheus_client",
)


def test_every_core_module_imports_nothing_from_above():
    code = (
        "import importlib, pkgutil, sys\n"
        "import providers.core as core\n"
        "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'providers.core.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "loaded = {m for m in sys.modules if m.split('.')[0] in "
        f"{ABOVE!r}}}\n"
        "loaded |= {m for m in sys.modules if m.startswith('providers.') "
        "and not m.startswith('providers.core')}\n"
        "print(len(names), sorted(loaded))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    count, loaded = out.stdout.strip().split(" ", 1)
    assert int(count) >= 15
    assert loaded == "[]"
