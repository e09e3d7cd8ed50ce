import uuid

from django.db import models
from django.db.models import Q

from tenants.models import ApiKey, Subtenant

NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class Function(models.Model):
    """A registered function. Without a subtenant it is offered to every subtenant."""

    class Kind(models.TextChoices):
        CODE = "code"
        WEBHOOK = "webhook"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subtenant = models.ForeignKey(
        Subtenant, null=True, blank=True, on_delete=models.CASCADE, related_name="functions"
    )
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True, default="")
    parameters = models.JSONField(default=dict, help_text="JSON Schema of the arguments")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    code = models.TextField(blank=True, default="")
    entrypoint = models.CharField(max_length=64, blank=True, default="")
    url = models.URLField(max_length=2000, blank=True, default="")
    headers_sealed = models.TextField(blank=True, default="", editable=False)
    timeout_s = models.FloatField(default=10)
    created_by = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["subtenant", "name"], name="function_unique_name_per_subtenant"
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(subtenant__isnull=True),
                name="function_unique_global_name",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class McpServer(models.Model):
    """A registered MCP server. Without a subtenant its tools are offered to everyone."""

    class Transport(models.TextChoices):
        STDIO = "stdio"
        SSE = "sse"
        STREAMABLE_HTTP = "streamable_http"
        WEBSOCKET = "websocket"

    class Status(models.TextChoices):
        CONNECTED = "connected"
        ERROR = "error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subtenant = models.ForeignKey(
        Subtenant, null=True, blank=True, on_delete=models.CASCADE, related_name="mcp_servers"
    )
    name = models.CharField(max_length=40)
    transport = models.CharField(max_length=20, choices=Transport.choices)
    url = models.CharField(max_length=2000, blank=True, default="")
    command = models.CharField(max_length=500, blank=True, default="")
    args = models.JSONField(default=list, blank=True)
    secrets_sealed = models.TextField(blank=True, default="", editable=False)
    api_key_hint = models.CharField(max_length=16, blank=True, default="", editable=False)
    timeout_s = models.FloatField(default=30)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONNECTED)
    last_error = models.TextField(blank=True, default="")
    tools = models.JSONField(default=list, blank=True, help_text="Tools listed at the last check")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "MCP server"
        constraints = [
            models.UniqueConstraint(
                fields=["subtenant", "name"], name="mcp_unique_name_per_subtenant"
            ),
            models.UniqueConstraint(
                fields=["name"], condition=Q(subtenant__isnull=True), name="mcp_unique_global_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name
