"""Admin screens for connections and routes: secrets are entered, never shown."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from connections import services
from connections.models import Connection, Route
from llmwrapper.errors import ValidationFailedError
from llmwrapper.secrets import unseal


class ConnectionForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored key.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored key")

    class Meta:
        model = Connection
        fields = [
            "name",
            "subtenant",
            "kind",
            "base_url",
            "default_model",
            "model_list",
            "timeout",
            "api_version",
            "is_active",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        url = data.get("base_url")
        if url:
            try:
                services.check_base_url(url, guarded=data.get("subtenant") is not None)
            except ValidationFailedError as exc:
                self.add_error("base_url", exc.details["base_url"])
        return data


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["name", "kind", "subtenant", "base_url", "api_key_hint", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "base_url"]
    readonly_fields = ["api_key_hint", "header_names", "created_at", "updated_at"]

    @admin.display(description="Headers")
    def header_names(self, connection: Connection) -> str:
        return ", ".join(sorted(unseal(connection.secrets_sealed, {}).get("headers") or {})) or "-"

    def save_model(self, request: Any, obj: Connection, form: Any, change: bool) -> None:
        secrets = unseal(obj.secrets_sealed, {}) if change else {}
        if form.cleaned_data.get("clear_api_key"):
            secrets.pop("api_key", None)
        elif form.cleaned_data.get("api_key"):
            secrets["api_key"] = form.cleaned_data["api_key"]
        services.set_secrets(obj, secrets)
        super().save_model(request, obj, form, change)


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = ["name", "subtenant", "deployment_count", "cooldown_seconds", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]

    @admin.display(description="Deployments")
    def deployment_count(self, route: Route) -> int:
        return len(route.deployments)
