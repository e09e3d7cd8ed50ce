"""The seed's function-calling scenario, `examples/function_calling_example.py`, end to
end against the running service and a fake model."""

import io
import runpy
from pathlib import Path

import pytest

from tools.sandbox import Sandbox

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "function_calling_example.py"


def test_function_calling_example_runs_end_to_end(live_server_url, admin_key, llm_fakes):
    both_tools = [
        {"name": "get_current_time", "arguments": {}},
        {"name": "calculator", "arguments": {"expression": "15 * 23"}},
    ]
    for _ in range(2):  # the new `tools` format, then the legacy `functions` format
        llm_fakes.openai.enqueue(tool_calls=both_tools)
        llm_fakes.openai.enqueue(text="It is noon, and 15 * 23 = 345.")

    out = io.StringIO()
    result = runpy.run_path(str(EXAMPLE))["main"](live_server_url, admin_key, out=out)

    answer = result["tools_format"]
    assert answer["message"]["content"] == "It is noon, and 15 * 23 = 345."
    tool_messages = {m["name"]: m["content"] for m in answer["messages"] if m["role"] == "tool"}
    assert tool_messages["calculator"] == "345"
    assert "iso" in tool_messages["get_current_time"]
    assert result["functions_format"]["message"]["content"].endswith("345.")
    # The client's own tool was offered in both formats, next to the server's.
    for request in (llm_fakes.openai.chat_requests()[0], llm_fakes.openai.chat_requests()[2]):
        offered = {t["function"]["name"] for t in request.body["tools"]}
        assert {"custom_function", "calculator", "get_current_time"} <= offered
    text = out.getvalue()
    assert "calculator -> 345" in text
    if Sandbox().available()[0]:
        assert "Weather in Paris: Sunny, 25°C" in text
        assert "weather_check" in result["functions"]
