"""Function parameters: the seed's list form or JSON Schema in, JSON Schema out."""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from tools.errors import ToolInputError

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
PARAM_TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def normalize_parameters(parameters: Any) -> dict[str, Any]:
    """Accept `[{"name", "type", "description", "required"}]` or a JSON Schema object.

    Raises ValueError with a message naming the problem.
    """
    if parameters in (None, [], {}):
        return {"type": "object", "properties": {}}
    if isinstance(parameters, list):
        return _from_list(parameters)
    if not isinstance(parameters, dict):
        raise ValueError("Must be a list of parameters or a JSON Schema object.")
    if parameters.get("type") != "object":
        raise ValueError('A JSON Schema for arguments must have "type": "object".')
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"Not a valid JSON Schema: {exc.message}") from exc
    return parameters


def _from_list(items: list[Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError(f"Parameter {index} needs a 'name'.")
        name = item["name"]
        if not NAME_RE.match(name):
            raise ValueError(f"Parameter name '{name}' must match {NAME_RE.pattern}.")
        kind = item.get("type", "string")
        if kind not in PARAM_TYPES:
            raise ValueError(f"Parameter '{name}': type must be one of {sorted(PARAM_TYPES)}.")
        prop: dict[str, Any] = {"type": kind}
        if item.get("description"):
            prop["description"] = str(item["description"])
        if isinstance(item.get("enum"), list):
            prop["enum"] = item["enum"]
        properties[name] = prop
        if item.get("required", False):
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def validate_arguments(arguments: Any, schema: dict[str, Any]) -> None:
    """Raise ToolInputError naming the failing field."""
    if not isinstance(arguments, dict):
        raise ToolInputError(
            "Arguments must be a JSON object.", details={"arguments": "not an object"}
        )
    validator = jsonschema.Draft202012Validator(schema)
    error = next(iter(sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))), None)
    if error is None:
        return
    field = ".".join(str(p) for p in error.path) or (
        error.validator_value[0]
        if error.validator == "required" and isinstance(error.validator_value, list)
        else "arguments"
    )
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        field = missing[0] if missing else field
    raise ToolInputError(
        f"Invalid arguments: {error.message}", details={str(field): [error.message]}
    )
