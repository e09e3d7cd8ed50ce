import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from chats import attachments
from chats.api import attachment_response
from chats.models import Attachment, Chat, Message


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


# The newest messages a chat's page shows; older ones are in the list of messages.
TRANSCRIPT_MESSAGES = 200


@dataclass
class _ToolUse:
    """A tool call of an assistant message, with the tool message that answered it."""

    id: str
    name: str
    arguments: str
    result: Message | None = None
    is_error: bool = False


@dataclass
class _Entry:
    message: Message
    url: str
    previews: str
    tool_uses: list[_ToolUse] = field(default_factory=list)


def transcript(chat: Chat, *, limit: int = TRANSCRIPT_MESSAGES) -> SafeString:
    """The conversation as a person reads it, oldest first and newest last: each
    message's role, text, images and documents, status and usage, and each tool call
    with its arguments and the result that answered it."""
    newest = list(chat.messages.order_by("-sequence")[:limit])
    messages = newest[::-1]
    results = {
        m.tool_call_id: m for m in messages if m.role == Message.Role.TOOL and m.tool_call_id
    }
    shown: set[Any] = set()
    entries = []
    for message in messages:
        if message.pk in shown:
            continue
        entry = _Entry(
            message,
            reverse("admin:chats_message_change", args=[message.pk]),
            _message_previews(message) if message.parts else "",
        )
        for call in message.tool_calls or []:
            result = results.get(call.get("id") or "")
            if result is not None:
                shown.add(result.pk)
            entry.tool_uses.append(
                _ToolUse(
                    id=call.get("id") or "",
                    name=call.get("name") or "",
                    arguments=_pretty(call.get("arguments")),
                    result=result,
                    is_error=bool(result and (result.metadata or {}).get("is_error")),
                )
            )
        entries.append(entry)
    return render_to_string(
        "admin/chats/transcript.html",
        {
            "entries": entries,
            "total": chat.last_sequence,
            "cut": len(newest) == limit and chat.last_sequence > limit,
            "limit": limit,
            "all_url": reverse("admin:chats_message_changelist") + f"?chat__id__exact={chat.pk}",
        },
    )


def _pretty(arguments: Any) -> str:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return arguments
    return json.dumps(arguments, indent=2, ensure_ascii=False, sort_keys=True)


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):
    list_display = ["__str__", "subtenant", "provider", "model", "last_sequence", "updated_at"]
    list_filter = [("subtenant", admin.RelatedOnlyFieldListFilter), "provider", "created_at"]
    search_fields = ["title", "id", "subtenant__name", "model"]
    readonly_fields = ["id", "last_sequence", "created_at", "updated_at", "conversation"]
    list_select_related = ["subtenant"]
    inlines = [AttachmentInline]

    def get_fieldsets(self, request: HttpRequest, obj: Chat | None = None):  # type: ignore[no-untyped-def]
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        fields = [f for f in fieldsets[0][1]["fields"] if f != "conversation"]
        return [
            (None, {"fields": fields}),
            ("Conversation", {"fields": ["conversation"], "classes": ["lw-transcript-set"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Chat | None = None):  # type: ignore[no-untyped-def]
        fields = super().get_readonly_fields(request, obj)
        return fields if obj is not None else [f for f in fields if f != "conversation"]

    @admin.display(description="transcript")
    def conversation(self, chat: Chat) -> str:
        return transcript(chat)


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
