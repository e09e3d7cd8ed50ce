from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "tools"
    verbose_name = "Functions and MCP servers"

    def ready(self) -> None:
        # Offer server-side tools to the tool loop (providers may not import tools).
        from providers.services import register_tool_executor
        from tools.executor import executor_for

        register_tool_executor(executor_for)
