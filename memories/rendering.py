"""Memories rendered into model context.

The format is fixed and deterministic (memories sorted by key, values as canonical
JSON), so the same memories always produce the same bytes and provider-side prompt
caching keeps working:

    Known facts about this user and account (key: value):
    - user.language: "French"
    - user.name: {"first":"Ada"}
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from memories.models import Memory

HEADER = "Known facts about this user and account (key: value):"


def render_memories(memories: Iterable[Memory]) -> str:
    lines = [
        f"- {memory.key}: {_canonical(memory.value)}"
        for memory in sorted(memories, key=lambda m: m.key)
    ]
    if not lines:
        return ""
    return "\n".join([HEADER, *lines])


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
