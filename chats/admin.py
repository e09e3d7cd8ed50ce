from django.contrib import admin

from chats.models import Chat, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["sequence", "role", "status", "content", "finish_reason", "created_at"]
    readonly_fields = fields
    can_delete = False
    ordering = ["sequence"]

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):
    list_display = ["__str__", "subtenant", "provider", "model", "last_sequence", "updated_at"]
    list_filter = [("subtenant", admin.RelatedOnlyFieldListFilter), "provider", "created_at"]
    search_fields = ["title", "id", "subtenant__name", "model"]
    readonly_fields = ["id", "last_sequence", "created_at", "updated_at"]
    list_select_related = ["subtenant"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["chat", "sequence", "role", "status", "provider", "model", "created_at"]
    list_filter = ["role", "status", "provider", "created_at"]
    search_fields = ["content", "chat__id", "chat__title"]
    readonly_fields = [f.name for f in Message._meta.fields]
    list_select_related = ["chat"]
