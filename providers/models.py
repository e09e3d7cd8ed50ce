import uuid

from django.db import models

from tenants.models import ApiKey, Subtenant


class LlmCall(models.Model):
    """One call to a provider (one model round), for usage reports and audits."""

    class Source(models.TextChoices):
        DIRECT = "direct"
        CHAT = "chat"
        OPENAI = "openai_compat"  # /v1/chat/completions
        ANTHROPIC = "anthropic_compat"  # /v1/messages
        RESPONSES = "responses"  # /v1/responses
        EMBEDDINGS = "embeddings"  # /v1/embeddings, /api/v1/llm/embed

    class Status(models.TextChoices):
        OK = "ok"
        ERROR = "error"
        INTERRUPTED = "interrupted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subtenant = models.ForeignKey(Subtenant, on_delete=models.CASCADE, related_name="llm_calls")
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="llm_calls"
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    # The chat, when the call served one (no foreign key: chats depend on providers).
    chat_id = models.UUIDField(null=True, blank=True, db_index=True)
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices)
    error_type = models.CharField(max_length=64, blank=True, default="")
    upstream_status = models.PositiveSmallIntegerField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["subtenant", "created_at"])]
        verbose_name = "LLM call"

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.status}"
