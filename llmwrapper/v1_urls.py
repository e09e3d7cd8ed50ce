"""Every /v1/ route: the vendor-compatible surfaces (OpenAI's and Anthropic's APIs)."""

from django.urls import path, re_path

from surfaces.anthropic.api import CountTokensView, MessagesView
from surfaces.embeddings import EmbeddingsView
from surfaces.openai_chat import ChatCompletionsView
from surfaces.openai_models import ModelDetailView, ModelsView
from surfaces.responses.api import ResponseDetailView, ResponsesView

urlpatterns = [
    path("chat/completions", ChatCompletionsView.as_view(), name="openai-chat-completions"),
    path("embeddings", EmbeddingsView.as_view(), name="openai-embeddings"),
    path("models", ModelsView.as_view(), name="openai-models"),
    # Ids hold slashes: "openai/gpt-4o-mini", "private/meta-llama/Llama-3.1-8B-Instruct".
    re_path(r"^models/(?P<model>.+)$", ModelDetailView.as_view(), name="openai-model"),
    path("responses", ResponsesView.as_view(), name="openai-responses"),
    path("responses/<str:response_id>", ResponseDetailView.as_view(), name="openai-response"),
    path("messages", MessagesView.as_view(), name="anthropic-messages"),
    path("messages/count_tokens", CountTokensView.as_view(), name="anthropic-count-tokens"),
]
