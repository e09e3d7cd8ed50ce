import math
import time
from datetime import datetime

import pytest

from tools.builtins import BUILTINS, BuiltinTool, calculator, get_current_time
from tools.errors import ToolError, ToolInputError


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("2 ** 10", 1024),
        ("-2 ** 2", -4),
        ("+-+3", -3),
        ("2 ** -1", 0.5),
        ("1.5e3 + .5", 1500.5),
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("floor(2.7) + ceil(2.1)", 5),
        ("log(8, 2)", 3.0),
        ("2 * pi", math.tau),
        ("10 ** 999", 10**999),
        ("(-1) ** 12345678901234567890", 1),
    ],
)
def test_calculator_evaluates_arithmetic(expression, expected):
    result = calculator(expression)
    assert result == pytest.approx(expected) if isinstance(expected, float) else result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('id')", "unknown function: __import__('os').system"),
        ("__import__('os')", "unknown function: __import__"),
        ("os.system('id')", "unknown function: os.system"),
        ("(1).__class__", "unsupported syntax: Attribute"),
        ("open('/etc/passwd')", "unknown function: open"),
        ("x + 1", "unknown name: x"),
        ("'a' * 3", "unsupported value"),
        ("True + 1", "unsupported value"),
        ("1j * 2", "unsupported value"),
        ("(lambda: 1)()", "unknown function: lambda"),
        ("lambda: 1", "unsupported syntax: Lambda"),
        ("[i for i in range(3)]", "unsupported syntax: ListComp"),
        ("1 if 1 else 2", "unsupported syntax: IfExp"),
        ("1 << 100", "unsupported operator: LShift"),
        ("1 < 2", "unsupported syntax: Compare"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("10 ** 1001", "too large"),
        ("2.5 ** 100000", "too large"),
        ("10.0 ** 400", "too large"),
        ("exp(1000)", "exp()"),
        ("sqrt(-1)", "sqrt()"),
        ("sqrt(1, 2, 3)", "one or two"),
        ("round(1.5, ndigits=2)", "one or two"),
        ("round(1.5, 1000)", "digits"),
        ("1 +", "not a valid expression"),
        ("", "non-empty"),
        ("1+" * 600 + "1", "longer than"),
        ("-" * 220 + "1", "nested too deeply"),
    ],
)
def test_calculator_refuses_anything_but_bounded_arithmetic(expression, message):
    with pytest.raises(ToolInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        calculator(expression)


@pytest.mark.parametrize("expression", ["9**9**9", "2 ** 10 ** 100", "(10**1000) * (10**1000)"])
def test_calculator_refuses_huge_results_before_computing(expression):
    started = time.monotonic()
    with pytest.raises(ToolInputError, match="too large"):
        calculator(expression)
    assert time.monotonic() - started < 0.5


def test_calculator_node_count_is_limited():
    with pytest.raises(ToolInputError, match="too long"):
        calculator("+".join(["1"] * 400))


def test_tool_errors_carry_a_stable_type():
    with pytest.raises(ToolError) as info:
        calculator("nope")
    assert info.value.type == "tool_input_error"


def test_get_current_time_in_a_timezone():
    before = int(time.time())
    result = get_current_time("Europe/Paris")
    assert result["timezone"] == "Europe/Paris"
    assert before <= result["unix"] <= time.time()
    moment = datetime.fromisoformat(result["iso"])
    assert moment.utcoffset() is not None
    assert abs(moment.timestamp() - result["unix"]) < 1


def test_get_current_time_defaults_to_utc():
    result = get_current_time()
    assert result["timezone"] == "UTC"
    assert result["iso"].endswith("+00:00")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "x" * 100])
def test_get_current_time_refuses_unknown_timezones(zone):
    with pytest.raises(ToolInputError):
        get_current_time(zone)


def test_registry_describes_and_invokes_builtins():
    assert set(BUILTINS) == {"calculator", "get_current_time"}
    for name, tool in BUILTINS.items():
        assert isinstance(tool, BuiltinTool)
        assert tool.name == name and tool.description
        assert tool.parameters["type"] == "object"
    assert BUILTINS["calculator"].invoke({"expression": "6 * 7"}) == 42
    assert BUILTINS["get_current_time"].invoke({})["timezone"] == "UTC"
    with pytest.raises(ToolInputError, match="invalid arguments"):
        BUILTINS["calculator"].invoke({"expr": "1"})
    with pytest.raises(ToolInputError, match="invalid arguments"):
        BUILTINS["calculator"].invoke({"expression": 1})
