from django.contrib import admin

from providers.models import LlmCall


@admin.register(LlmCall)
class LlmCallAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "subtenant",
        "source",
        "provider",
        "model",
        "status",
        "input_tokens",
        "output_tokens",
        "latency_ms",
    ]
    list_filter = [
        "status",
        "source",
        "provider",
        ("subtenant", admin.RelatedOnlyFieldListFilter),
        "created_at",
    ]
    search_fields = ["model", "subtenant__name", "chat_id"]
    readonly_fields = [f.name for f in LlmCall._meta.fields]
    list_select_related = ["subtenant"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
