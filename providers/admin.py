from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from providers.models import LlmCall, Price
from providers.prices import price_cache_clear


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
        "cost_usd",
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


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    """The price table; every change applies at once in this process (the others
    within PRICE_CACHE_SECONDS)."""

    list_display = ["model", "connection", "input", "output", "cached_input", "updated_at"]
    list_filter = ["connection"]
    search_fields = ["model", "connection"]
    readonly_fields = ["id", "created_at", "updated_at"]
    fields = [
        "id",
        "connection",
        "model",
        "input",
        "output",
        "cached_input",
        "created_at",
        "updated_at",
    ]

    def save_model(self, request: HttpRequest, obj: Price, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        price_cache_clear()

    def delete_model(self, request: HttpRequest, obj: Price) -> None:
        super().delete_model(request, obj)
        price_cache_clear()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Price]) -> None:
        super().delete_queryset(request, queryset)
        price_cache_clear()
