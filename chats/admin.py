from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from chats import attachments
from chats.api import attachment_response
from chats.models import Attachment, Chat, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["sequence", "role", "status", "content", "attachments", "finish_reason", "created_at"]
    readonly_fields = fields
    can_delete = False
    ordering = ["sequence"]

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description="images and documents")
    def attachments(self, message: Message) -> str:
        return _message_previews(message)


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    fields = ["preview", "media_type", "size", "sha256", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description="attachment")
    def preview(self, attachment: Attachment) -> str:
        return _preview(attachment.pk, attachment.media_type, attachment.size, attachment.filename)


def _file_url(attachment_id: object) -> str:
    return reverse("admin:chats_attachment_file", args=[attachment_id])


def _preview(attachment_id: object, media_type: str, size: int, filename: str | None) -> str:
    """A thumbnail of an image; a document's name and size, linked to its bytes."""
    url = _file_url(attachment_id)
    if media_type.startswith("image/"):
        return format_html(
            '<a href="{}"><img src="{}" alt="image" style="max-height:120px;max-width:200px"></a>',
            url,
            url,
        )
    return format_html(
        '<a href="{}">{}</a> ({})', url, filename or "document", filesizeformat(size)
    )


def _message_previews(message: Message) -> str:
    shown = [p for p in message.parts if "attachment" in p]
    if not shown:
        return "-"
    return format_html_join(
        " ",
        "{}",
        (
            (
                _preview(
                    p["attachment"]["id"],
                    p["attachment"]["media_type"],
                    p["attachment"]["size"],
                    (p.get("file") or {}).get("filename"),
                ),
            )
            for p in shown
        ),
    )


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):
    list_display = ["__str__", "subtenant", "provider", "model", "last_sequence", "updated_at"]
    list_filter = [("subtenant", admin.RelatedOnlyFieldListFilter), "provider", "created_at"]
    search_fields = ["title", "id", "subtenant__name", "model"]
    readonly_fields = ["id", "last_sequence", "created_at", "updated_at"]
    list_select_related = ["subtenant"]
    inlines = [MessageInline, AttachmentInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["chat", "sequence", "role", "status", "provider", "model", "created_at"]
    list_filter = ["role", "status", "provider", "created_at"]
    search_fields = ["content", "chat__id", "chat__title"]
    readonly_fields = ["attachments", *(f.name for f in Message._meta.fields)]
    list_select_related = ["chat"]

    @admin.display(description="images and documents")
    def attachments(self, message: Message) -> str:
        return _message_previews(message)


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """Attachments, read-only; their bytes through an admin (staff) view."""

    list_display = ["__str__", "chat", "subtenant", "media_type", "size", "created_at"]
    list_filter = ["media_type", ("subtenant", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["id", "sha256", "filename", "chat__id"]
    readonly_fields = ["preview", *(f.name for f in Attachment._meta.fields)]
    list_select_related = ["chat", "subtenant"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="attachment")
    def preview(self, attachment: Attachment) -> str:
        return _preview(attachment.pk, attachment.media_type, attachment.size, attachment.filename)

    def get_urls(self):  # type: ignore[no-untyped-def]
        serve = self.admin_site.admin_view(self.file_view)
        own = [path("<uuid:pk>/file/", serve, name="chats_attachment_file")]
        return own + super().get_urls()

    def file_view(self, request: HttpRequest, pk: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise Http404
        attachment = Attachment.objects.filter(pk=pk).first()
        if attachment is None:
            raise Http404
        try:
            data = attachments.read(attachment)
        except FileNotFoundError as exc:
            raise Http404 from exc
        return attachment_response(attachment, data)
