import uuid
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models

from providers.core.descriptors import all_descriptors


def provider_choices() -> list[tuple[str, str]]:
    """The registered vendors; a callable, so adding one needs no migration."""
    return [(d.name, d.label) for d in all_descriptors()]


BUDGET_PERIODS = [("month", "Calendar month"), ("day", "Day")]
BUDGET_PERIOD_HELP = "The period of the budgets (UTC)."
# Budgets in dollars: up to 99,999,999.999999.
USD_FIELD = {
    "max_digits": 14,
    "decimal_places": 6,
    "null": True,
    "blank": True,
    "validators": [MinValueValidator(Decimal(0))],
}
# Dollars spent: fine enough for one token of the cheapest model.
SPENT_FIELD = {"max_digits": 22, "decimal_places": 10, "default": Decimal(0)}


class Subtenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    default_provider = models.CharField(
        max_length=32, blank=True, default="", choices=provider_choices
    )
    default_model = models.CharField(max_length=200, blank=True, default="")
    is_active = models.BooleanField(default=True)
    # Limits; empty means the service-wide default (RATE_LIMIT_*), 0 means unlimited.
    rate_limit_rpm = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute for the whole subtenant."
    )
    rate_limit_tpm = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tokens (prompt + completion) per minute."
    )
    token_budget = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Tokens allowed per budget period; empty = no budget."
    )
    budget_usd = models.DecimalField(
        **USD_FIELD, help_text="US dollars allowed per budget period; empty = no budget."
    )
    budget_period = models.CharField(
        max_length=8, choices=BUDGET_PERIODS, default="month", help_text=BUDGET_PERIOD_HELP
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """An API key. Only its SHA-256 digest is stored; the full key is shown once.

    A key without a subtenant is an admin key.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    subtenant = models.ForeignKey(
        Subtenant, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )
    rate_limit_rpm = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute for this key; empty = default."
    )
    budget_usd = models.DecimalField(
        **USD_FIELD, help_text="US dollars this key may spend per budget period; empty = none."
    )
    budget_period = models.CharField(
        max_length=8, choices=BUDGET_PERIODS, default="month", help_text=BUDGET_PERIOD_HELP
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_admin(self) -> bool:
        return self.subtenant_id is None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class TokenUsage(models.Model):
    """Tokens and dollars a subtenant used in one budget period (kept in step with its
    calls)."""

    subtenant = models.ForeignKey(Subtenant, on_delete=models.CASCADE, related_name="token_usage")
    period_start = models.DateField()
    tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(**SPENT_FIELD)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subtenant", "period_start"], name="token_usage_unique_period"
            )
        ]
        verbose_name = "subtenant usage per period"
        verbose_name_plural = "subtenant usage per period"

    def __str__(self) -> str:
        return f"{self.subtenant_id} {self.period_start}: {self.tokens} tokens, ${self.cost_usd}"


class KeySpend(models.Model):
    """Dollars one API key spent in one budget period (kept in step with its calls)."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="spend")
    period_start = models.DateField()
    cost_usd = models.DecimalField(**SPENT_FIELD)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "period_start"], name="key_spend_unique_period"
            )
        ]
        verbose_name = "key spend per period"
        verbose_name_plural = "key spend per period"

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.period_start}: ${self.cost_usd}"
