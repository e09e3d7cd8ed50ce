"""The LLM core: normalized types, errors, vendor adapters, the registry, retries and
the tool loop. It imports no Django, no project package and no telemetry library."""
