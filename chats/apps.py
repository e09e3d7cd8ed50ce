from django.apps import AppConfig


class ChatsConfig(AppConfig):
    name = "chats"

    def ready(self) -> None:
        # The OpenAI-compatible API persists into chats through this hook
        # (providers may not import chats).
        from chats.exchange import ChatExchangeRecorder
        from providers.openai_api import register_exchange_recorder

        register_exchange_recorder(ChatExchangeRecorder())
