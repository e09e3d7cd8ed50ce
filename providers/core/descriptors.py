"""The one list of vendors. Each descriptor is declared next to its adapter; everything
that names providers is derived from this list: the registry's configurations and "is it
configured?" (`providers.core.registry`), the settings the gateway reads and their defaults
(`providers.gateway`, `llmwrapper.settings.llm`), the subtenants' default_provider choices,
the model listing with each vendor's capabilities, and the test fakes.

Adding a vendor: declare its `ProviderDescriptor` next to its adapter and add it to
`_BUILTIN` (a plugin can call `register()` instead). Importing this module loads no
vendor SDK: adapters import theirs when an instance is built.
"""

from __future__ import annotations

from providers.core.base import ProviderDescriptor, Setting
from providers.core.vendors.anthropic import ANTHROPIC
from providers.core.vendors.ollama import LOCAL
from providers.core.vendors.openai import OPENAI, PRIVATE

__all__ = [
    "ProviderDescriptor",
    "Setting",
    "all_descriptors",
    "descriptor",
    "register",
    "setting_names",
    "unregister",
]

_BUILTIN = (OPENAI, ANTHROPIC, LOCAL, PRIVATE)

_registered: dict[str, ProviderDescriptor] = {d.name: d for d in _BUILTIN}


def all_descriptors() -> tuple[ProviderDescriptor, ...]:
    """Every registered vendor, in registration order."""
    return tuple(_registered.values())


def descriptor(name: str) -> ProviderDescriptor | None:
    return _registered.get(name)


def register(new: ProviderDescriptor) -> None:
    """Add a vendor (or replace one of that name)."""
    for other in _registered.values():
        if other.name != new.name and other.kind == new.kind and other.adapter != new.adapter:
            raise ValueError(f"Kind {new.kind!r} is already served by {other.adapter!r}")
    _registered[new.name] = new


def unregister(name: str) -> None:
    """Remove a vendor added by `register()` (tests); the built-in ones stay."""
    if name not in {d.name for d in _BUILTIN}:
        _registered.pop(name, None)


def setting_names() -> tuple[str, ...]:
    """Every vendor setting, in declaration order."""
    return tuple(s.name for d in _registered.values() for s in d.settings)
