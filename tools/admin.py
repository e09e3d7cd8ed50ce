from django.contrib import admin

from tools.models import Function, McpServer


@admin.register(Function)
class FunctionAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "subtenant", "timeout_s", "updated_at"]
    list_filter = ["kind", ("subtenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "description", "subtenant__name"]
    readonly_fields = ["id", "created_by", "created_at", "updated_at"]
    exclude = ["headers_sealed"]
    list_select_related = ["subtenant"]


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin):
    list_display = ["name", "transport", "subtenant", "status", "last_checked_at"]
    list_filter = ["transport", "status", ("subtenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "url", "subtenant__name"]
    readonly_fields = [
        "id",
        "api_key_hint",
        "status",
        "last_error",
        "tools",
        "last_checked_at",
        "created_by",
        "created_at",
        "updated_at",
    ]
    exclude = ["secrets_sealed"]
    list_select_related = ["subtenant"]
