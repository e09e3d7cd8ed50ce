"""Provider connections and routes stored in the database, so every process agrees.

A connection is one endpoint of a vendor with its own key; a route is a public model
name spread over deployments (a connection and a model each). Both are global (no
subtenant: an admin's) or a subtenant's own, which shadows a global one of its name.
"""

import uuid

from django.db import models
from django.db.models import Q

from tenants.models import Subtenant

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"


class Connection(models.Model):
    class Kind(models.TextChoices):
        OPENAI = "openai"
        ANTHROPIC = "anthropic"
        OLLAMA = "ollama"
        OPENAI_COMPATIBLE = "openai_compatible"
        AZURE_OPENAI = "azure_openai"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subtenant = models.ForeignKey(
        Subtenant, null=True, blank=True, on_delete=models.CASCADE, related_name="connections"
    )
    name = models.CharField(max_length=32)  # as chats and call records name providers
    kind = models.CharField(max_length=32, choices=Kind.choices)
    base_url = models.CharField(max_length=2000, blank=True, default="")
    # The key and headers, encrypted (llmwrapper.secrets); never returned.
    secrets_sealed = models.TextField(blank=True, default="", editable=False)
    api_key_hint = models.CharField(max_length=16, blank=True, default="", editable=False)
    default_model = models.CharField(max_length=200, blank=True, default="")
    # The API's `models`: the models it offers; empty: asked of the vendor.
    model_list = models.JSONField(default=list, blank=True)
    timeout = models.FloatField(null=True, blank=True, help_text="Seconds; empty: the default")
    api_version = models.CharField(max_length=40, blank=True, default="", help_text="Azure")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["subtenant", "name"], name="connection_unique_name_per_subtenant"
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(subtenant__isnull=True),
                name="connection_unique_global",
            ),
        ]

    def __str__(self) -> str:
        return self.name if self.subtenant_id is None else f"{self.name} ({self.subtenant_id})"


class Route(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subtenant = models.ForeignKey(
        Subtenant, null=True, blank=True, on_delete=models.CASCADE, related_name="routes"
    )
    name = models.CharField(max_length=64)
    # [{"connection", "model", "weight", "priority"}]: the best priority (lowest number)
    # that is not cooling down serves, by weight; the others are its fallbacks.
    deployments = models.JSONField(default=list)
    cooldown_seconds = models.FloatField(default=30)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["subtenant", "name"], name="route_unique_name_per_subtenant"
            ),
            models.UniqueConstraint(
                fields=["name"], condition=Q(subtenant__isnull=True), name="route_unique_global"
            ),
        ]

    def __str__(self) -> str:
        return self.name if self.subtenant_id is None else f"{self.name} ({self.subtenant_id})"
