"""The endpoints the hot lane answers (`llmwrapper.lane`), by path."""

from llmwrapper.lane import Route
from surfaces.llm.api import CompleteView, StreamView, lane_complete, lane_stream
from surfaces.openai_chat import ChatCompletionsView, lane_start

LANE_ROUTES = {
    "/v1/chat/completions": Route(lane_start, ChatCompletionsView),
    "/api/v1/llm/complete": Route(lane_complete, CompleteView),
    "/api/v1/llm/stream": Route(lane_stream, StreamView),
}
