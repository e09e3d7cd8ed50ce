import uuid

from django.core.validators import RegexValidator
from django.db import models

from tenants.models import Subtenant

MEMORY_KEY_PATTERN = r"^[A-Za-z0-9_.:@-]{1,255}$"


class Memory(models.Model):
    """A key-value fact of a subtenant, injected into model context on request."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subtenant = models.ForeignKey(Subtenant, on_delete=models.CASCADE, related_name="memories")
    key = models.CharField(
        max_length=255,
        validators=[RegexValidator(MEMORY_KEY_PATTERN, "Use letters, digits and _ . : @ -")],
    )
    value = models.JSONField()
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        verbose_name_plural = "memories"
        constraints = [
            models.UniqueConstraint(fields=["subtenant", "key"], name="memory_unique_key")
        ]

    def __str__(self) -> str:
        return self.key
