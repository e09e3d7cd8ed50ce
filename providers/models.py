import re
import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from tenants.models import SPENT_FIELD, ApiKey, Subtenant


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
    # From the price table when the call was stored; null when no price matched.
    cost_usd = models.DecimalField(
        max_digits=SPENT_FIELD["max_digits"],
        decimal_places=SPENT_FIELD["decimal_places"],
        null=True,
        blank=True,
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["subtenant", "created_at"])]
        verbose_name = "LLM call"

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.status}"


_CONNECTION = re.compile(r"[^\s/*]+")


def validate_price_connection(value: str) -> None:
    if value and not _CONNECTION.fullmatch(value):
        raise ValidationError(
            "A connection name, e.g. 'openai': no spaces, '/' or '*' (empty = any connection)."
        )


def validate_price_model(value: str) -> None:
    if "*" in value[:-1] or any(c.isspace() for c in value):
        raise ValidationError(
            "A model name, or a prefix ending in '*' (e.g. 'gpt-4o*'): "
            "no spaces, and '*' only at the end."
        )


_PER_MILLION = {
    "max_digits": 12,
    "decimal_places": 6,
    "validators": [MinValueValidator(Decimal(0))],
}


class Price(models.Model):
    """What a model costs, in US dollars per million tokens.

    `model` is a model name or a prefix ending in `*`; `connection` (empty = any) is
    matched against a call's provider. See `providers.prices` for which price applies.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.CharField(
        max_length=32,
        blank=True,
        default="",
        validators=[validate_price_connection],
        help_text="A provider or connection name (e.g. openai); empty = any.",
    )
    model = models.CharField(
        max_length=200,
        validators=[validate_price_model],
        help_text="A model name, or a prefix ending in * (e.g. gpt-4o*).",
    )
    input = models.DecimalField(**_PER_MILLION, help_text="USD per million input tokens.")
    output = models.DecimalField(**_PER_MILLION, help_text="USD per million output tokens.")
    cached_input = models.DecimalField(
        **_PER_MILLION,
        null=True,
        blank=True,
        help_text="USD per million cached input tokens; empty = the input price.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connection", "model"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "model"], name="price_unique_model")
        ]

    def __str__(self) -> str:
        return f"{self.connection or '*'}/{self.model}"
