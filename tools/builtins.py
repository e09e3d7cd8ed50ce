"""Built-in tools every tenant can use: a safe calculator and the current time.

The calculator walks the ``ast`` of the expression itself; nothing is ever passed to
``eval``/``compile``. Every operation is bounded *before* it is computed, so inputs such
as ``9**9**9`` are refused immediately instead of tying up a worker.
"""

from __future__ import annotations

import ast
import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from tools.errors import ToolInputError

MAX_EXPRESSION_CHARS = 1000
MAX_NODES = 500
MAX_DEPTH = 200
MAX_RESULT_BITS = 3322  # about 10**1000
MAX_ROUND_DIGITS = 100

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _round(value: Number, ndigits: int | None = None) -> Number:
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS):
        raise ToolInputError(f"round() digits must be an integer within ±{MAX_ROUND_DIGITS}")
    return round(value) if ndigits is None else round(value, ndigits)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": _round,
    "sqrt": math.sqrt,
    "floor": math.floor,
    "ceil": math.ceil,
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
}


def _bits(value: Number) -> float:
    """Size of a number in bits (floats count by their exponent)."""
    if isinstance(value, int):
        return value.bit_length()
    return abs(math.frexp(value)[1]) if math.isfinite(value) else math.inf


def _check_size(value: Number) -> Number:
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolInputError("the result is too large")
    if isinstance(value, int) and value.bit_length() > MAX_RESULT_BITS:
        raise ToolInputError("the result is too large (more than about 10**1000)")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if base == 0 and exponent < 0:
        raise ToolInputError("division by zero")
    if isinstance(exponent, int) and isinstance(base, int) and exponent >= 0:
        # |base| ** exponent has about exponent * log2|base| bits: refuse before computing
        # (the first test also keeps a huge exponent from overflowing the float product).
        if abs(base) > 1 and (
            exponent > MAX_RESULT_BITS or exponent * math.log2(abs(base)) > MAX_RESULT_BITS
        ):
            raise ToolInputError("the result is too large (more than about 10**1000)")
        return base**exponent
    try:
        result = math.pow(base, exponent)
    except OverflowError as exc:
        raise ToolInputError("the result is too large") from exc
    except ValueError as exc:  # e.g. a negative number to a fractional power
        raise ToolInputError(f"invalid power: {base} ** {exponent}") from exc
    return result


class _Evaluator:
    def evaluate(self, node: ast.AST, depth: int = 0) -> Number:
        if depth > MAX_DEPTH:
            raise ToolInputError("the expression is nested too deeply")
        if isinstance(node, ast.Expression):
            return self.evaluate(node.body, depth + 1)
        if isinstance(node, ast.Constant):
            # bool is an int subclass; True + 1 is not arithmetic a user meant to write.
            if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
                return _check_size(node.value)
            raise ToolInputError(f"unsupported value: {node.value!r}")
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self.evaluate(node.operand, depth + 1))
        if isinstance(node, ast.BinOp):
            left = self.evaluate(node.left, depth + 1)
            right = self.evaluate(node.right, depth + 1)
            if isinstance(node.op, ast.Pow):
                return _check_size(_power(left, right))
            if type(node.op) not in _BINARY:
                raise ToolInputError(f"unsupported operator: {type(node.op).__name__}")
            if isinstance(node.op, ast.Mult) and _bits(left) + _bits(right) > MAX_RESULT_BITS + 1:
                raise ToolInputError("the result is too large (more than about 10**1000)")
            try:
                return _check_size(_BINARY[type(node.op)](left, right))
            except ZeroDivisionError as exc:
                raise ToolInputError("division by zero") from exc
            except OverflowError as exc:
                raise ToolInputError("the result is too large") from exc
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            raise ToolInputError(f"unknown name: {node.id}")
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        raise ToolInputError(f"unsupported syntax: {type(node).__name__}")

    def _call(self, node: ast.Call, depth: int) -> Number:
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            allowed = ", ".join(_FUNCTIONS)
            name = ast.unparse(node.func)[:50]  # text only, never evaluated
            raise ToolInputError(f"unknown function: {name} (allowed: {allowed})")
        if node.keywords or len(node.args) > 2:
            raise ToolInputError(f"{node.func.id}() takes one or two positional arguments")
        args = [self.evaluate(arg, depth + 1) for arg in node.args]
        try:
            return _check_size(_FUNCTIONS[node.func.id](*args))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ToolInputError(f"{node.func.id}(): {exc}") from exc


def calculator(expression: str) -> int | float:
    """Evaluate an arithmetic expression: numbers, + - * / // % **, parentheses, unary
    signs, the constants pi/e/tau and a few math functions (sqrt, abs, round, ...)."""
    if not isinstance(expression, str) or not expression.strip():
        raise ToolInputError("expression must be a non-empty string")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolInputError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise ToolInputError(f"not a valid expression: {expression!r}") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolInputError("the expression is too long")
    return _Evaluator().evaluate(tree)


def get_current_time(timezone: str | None = None) -> dict[str, Any]:
    """The current time in ``timezone`` (an IANA name such as ``Europe/Paris``; UTC if
    omitted)."""
    name = timezone or "UTC"
    if not isinstance(name, str) or len(name) > 64:
        raise ToolInputError("timezone must be an IANA time zone name such as Europe/Paris")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # ValueError: e.g. "../etc/passwd"
        raise ToolInputError(f"unknown timezone: {name}") from exc
    now = time.time()
    moment = datetime.fromtimestamp(now, tz=UTC).astimezone(zone)
    return {"iso": moment.isoformat(), "timezone": name, "unix": int(now)}


@dataclass(frozen=True)
class BuiltinTool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object
    func: Callable[..., Any]

    def invoke(self, arguments: dict[str, Any]) -> Any:
        """Validate ``arguments`` against the schema, then call the tool."""
        try:
            jsonschema.validate(arguments, self.parameters)
        except jsonschema.ValidationError as exc:
            raise ToolInputError(f"invalid arguments for {self.name}: {exc.message}") from exc
        return self.func(**arguments)


BUILTINS: dict[str, BuiltinTool] = {
    tool.name: tool
    for tool in (
        BuiltinTool(
            name="calculator",
            description=(
                "Evaluate an arithmetic expression exactly. Supports + - * / // % **, "
                "parentheses, pi, e, tau and sqrt, abs, round, floor, ceil, exp, log, log2, "
                "log10, sin, cos, tan."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "expression": {
                        "type": "string",
                        "description": "The expression, e.g. (2 + 3) * sqrt(16) / 7",
                        "maxLength": MAX_EXPRESSION_CHARS,
                    }
                },
                "required": ["expression"],
                "additionalProperties": False,
            },
            func=calculator,
        ),
        BuiltinTool(
            name="get_current_time",
            description="Get the current date and time, optionally in a given time zone.",
            parameters={
                "type": "object",
                "properties": {
                    "timezone": {
                        "type": "string",
                        "description": "IANA time zone name such as Europe/Paris; UTC if omitted",
                    }
                },
                "additionalProperties": False,
            },
            func=get_current_time,
        ),
    )
}
