from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from tenants.models import ApiKey, KeySpend, Subtenant, TokenUsage
from tenants.selectors import api_key_cache_clear
from tenants.services import KEY_PREFIX, hash_key, subtenant_update


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Subtenant)
class SubtenantAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "is_active",
        "default_provider",
        "rate_limit_rpm",
        "rate_limit_tpm",
        "token_budget",
        "budget_usd",
        "created_at",
    ]
    list_filter = ["is_active", "default_provider", "created_at"]
    search_fields = ["name", "description", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    inlines = [ApiKeyInline]

    def save_model(self, request: HttpRequest, obj: Subtenant, form: object, change: bool) -> None:
        if change:
            subtenant_update(subtenant=obj)  # also forgets the cached keys
        else:
            super().save_model(request, obj, form, change)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "subtenant",
        "budget_usd",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = [("subtenant", admin.RelatedOnlyFieldListFilter), "created_at", "revoked_at"]
    search_fields = ["name", "prefix", "subtenant__name"]
    readonly_fields = ["id", "prefix", "created_at", "last_used_at"]
    fields = [
        "id",
        "name",
        "subtenant",
        "prefix",
        "rate_limit_rpm",
        "budget_usd",
        "budget_period",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if not change:
            import secrets

            raw = KEY_PREFIX + secrets.token_urlsafe(32)
            obj.prefix, obj.key_hash = raw[:12], hash_key(raw)
            super().save_model(request, obj, form, change)
            messages.warning(request, f"New API key (shown only this once): {raw}")
            return
        super().save_model(request, obj, form, change)
        api_key_cache_clear()

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        api_key_cache_clear()
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(TokenUsage)
class TokenUsageAdmin(admin.ModelAdmin):
    list_display = ["subtenant", "period_start", "tokens", "cost_usd"]
    list_filter = [("subtenant", admin.RelatedOnlyFieldListFilter), "period_start"]
    readonly_fields = ["subtenant", "period_start", "tokens", "cost_usd"]
    list_select_related = ["subtenant"]


@admin.register(KeySpend)
class KeySpendAdmin(admin.ModelAdmin):
    list_display = ["api_key", "period_start", "cost_usd"]
    list_filter = [("api_key", admin.RelatedOnlyFieldListFilter), "period_start"]
    readonly_fields = ["api_key", "period_start", "cost_usd"]
    list_select_related = ["api_key"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
