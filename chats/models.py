import uuid

from django.core.files.storage import storages
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from tenants.models import Subtenant


class Chat(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The index (subtenant, -updated_at) serves lookups by subtenant: no index of its own,
    # which every send's UPDATE of the row would write too.
    subtenant = models.ForeignKey(
        Subtenant, on_delete=models.CASCADE, related_name="chats", db_index=False
    )
    title = models.CharField(max_length=200, blank=True, default="")
    provider = models.CharField(max_length=32, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    system_prompt = models.TextField(blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The sequence number of the newest message; raised under a row lock so sequence
    # numbers stay gap-free when two sends race.
    last_sequence = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "id"]
        indexes = [models.Index(fields=["subtenant", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or str(self.id)


class Message(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system"
        USER = "user"
        ASSISTANT = "assistant"
        TOOL = "tool"

    class Status(models.TextChoices):
        COMPLETE = "complete"
        STREAMING = "streaming"
        INTERRUPTED = "interrupted"
        ERROR = "error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The unique (chat, sequence) index serves lookups by chat. An index on the chat alone
    # would be written by every insert and update, and on it the planner may read a whole
    # chat and sort it to find its newest messages.
    chat = models.ForeignKey(
        Chat, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    sequence = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True, default="")
    tool_calls = models.JSONField(default=list, blank=True)
    tool_call_id = models.CharField(max_length=200, blank=True, default="")
    name = models.CharField(max_length=128, blank=True, default="")
    provider = models.CharField(max_length=32, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=32, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.TextField(blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The content parts, in order, when the message holds images or documents (`content`
    # is then their text); each binary is a reference to an Attachment of the chat.
    # Empty for text-only messages. The format is in chats/attachments.py.
    parts = models.JSONField(default=list, blank=True)
    # While `streaming`: the time until which the worker streaming it vouches for it.
    # Its process renews the lease; once it lapses, any process's sweeper marks the
    # message `interrupted` with the text saved so far (see chats/leases.py).
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["chat", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["chat", "sequence"], name="message_unique_sequence")
        ]
        indexes = [
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status="streaming"),
                name="message_streaming_lease",
            )
        ]

    def __str__(self) -> str:
        return f"{self.chat_id}#{self.sequence} {self.role}"


class Attachment(models.Model):
    """The bytes of an image or document sent in a chat, stored once per chat: its file
    is in the `attachments` storage (STORAGES), named `<subtenant>/<chat>/<sha256>`."""

    # Derived from the chat and the bytes (chats.attachments.attachment_id), so the same
    # bytes sent twice in a chat, even by concurrent sends, are one attachment.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subtenant = models.ForeignKey(Subtenant, on_delete=models.CASCADE, related_name="attachments")
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="attachments")
    sha256 = models.CharField(max_length=64)
    media_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    filename = models.CharField(max_length=255, blank=True, default="")
    storage_name = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["chat", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["chat", "sha256"], name="attachment_unique_bytes")
        ]

    def __str__(self) -> str:
        return self.filename or f"{self.media_type} {self.sha256[:12]}"


@receiver(post_delete, sender=Attachment)
def _attachment_deleted(sender: type, instance: Attachment, **kwargs: object) -> None:
    """Deleting a chat or a subtenant cascades to its attachments' rows in the database
    layer, past any service: the file follows its row here, once the deletion commits
    (a deletion rolled back keeps it; a storage that fails is logged, not raised)."""
    name = instance.storage_name
    transaction.on_commit(lambda: storages["attachments"].delete(name), robust=True)


class IdempotencyRecord(models.Model):
    """The outcome of a send made with an `Idempotency-Key`, replayed on retries."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        DONE = "done"

    id = models.BigAutoField(primary_key=True)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response = models.JSONField(null=True, blank=True)
    # While `in_progress`: renewed by the worker running the send; a lapsed lease frees
    # the key for a retry (the worker died).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Who holds the claim: a new one for each send that claims the key (a takeover too),
    # so a send whose lease lapsed cannot finish the record for the send that took it.
    claim = models.UUIDField(default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chat", "key"], name="idempotency_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.chat_id}:{self.key}"
