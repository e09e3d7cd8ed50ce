"""The endpoints the hot lane answers (`llmwrapper.lane`): by path, and by pattern."""

import re

from llmwrapper.lane import Route
from surfaces.anthropic import api as anthropic
from surfaces.chats.api import MessagesView, StreamMessageView, lane_send, lane_stream_send
from surfaces.llm.api import CompleteView, StreamView, lane_complete, lane_stream
from surfaces.openai_chat import ChatCompletionsView, lane_error, lane_start
from surfaces.responses.api import ResponsesView, lane_create

# A turn that persists into a chat is the view's.
_CHAT_HEADER = frozenset({b"x-chat-id"})

LANE_ROUTES = {
    "/v1/chat/completions": Route(
        lane_start, ChatCompletionsView, declines=_CHAT_HEADER, error=lane_error
    ),
    "/api/v1/llm/complete": Route(lane_complete, CompleteView),
    "/api/v1/llm/stream": Route(lane_stream, StreamView),
    "/v1/responses": Route(lane_create, ResponsesView, declines=_CHAT_HEADER, error=lane_error),
    "/v1/messages": Route(
        anthropic.lane_messages, anthropic.MessagesView, error=anthropic.lane_error
    ),
}

# The chat's id as Django's `uuid` path converter matches it.
_CHAT = r"/api/v1/chats/(?P<chat_pk>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
LANE_PATTERNS = (
    (
        re.compile(_CHAT + "/messages"),
        Route(lane_send, MessagesView, "/api/v1/chats/{chat_pk}/messages"),
    ),
    (
        re.compile(_CHAT + "/messages/stream"),
        Route(lane_stream_send, StreamMessageView, "/api/v1/chats/{chat_pk}/messages/stream"),
    ),
)
