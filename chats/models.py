import uuid

from django.db import models

from tenants.models import Subtenant


class Chat(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subtenant = models.ForeignKey(Subtenant, on_delete=models.CASCADE, related_name="chats")
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
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
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
