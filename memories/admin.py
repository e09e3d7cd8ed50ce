from django.contrib import admin

from memories.models import Memory


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ["key", "subtenant", "description", "updated_at"]
    list_filter = [("subtenant", admin.RelatedOnlyFieldListFilter), "updated_at"]
    search_fields = ["key", "description", "subtenant__name"]
    readonly_fields = ["id", "created_at", "updated_at"]
    list_select_related = ["subtenant"]
