"""Every /v1/ route: the vendor-compatible surfaces (OpenAI's and Anthropic's APIs)."""

from django.urls import path

from providers.openai_api import ChatCompletionsView, ModelsView

urlpatterns = [
    path("chat/completions", ChatCompletionsView.as_view(), name="openai-chat-completions"),
    path("models", ModelsView.as_view(), name="openai-models"),
]
