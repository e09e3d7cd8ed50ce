"""`messages_append` numbers messages after the chat's last one, whichever way the
database takes them (one statement on PostgreSQL, a transaction elsewhere)."""

import pytest

from chats import services
from chats.models import Chat, Message
from tenants.models import Subtenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat():
    return Chat.objects.create(subtenant=Subtenant.objects.create(name="append"))


def test_appended_messages_follow_the_last_one(chat):
    services.messages_append(chat=chat, messages=[{"role": "user", "content": "a"}])
    user, assistant = services.messages_append(
        chat=chat,
        messages=[
            {"role": "user", "content": "b"},
            {"role": "assistant", "status": Message.Status.STREAMING},
        ],
    )
    assert (user.sequence, assistant.sequence, chat.last_sequence) == (2, 3, 3)
    stored = list(Message.objects.filter(chat=chat).values_list("sequence", "content", "status"))
    assert stored == [(1, "a", "complete"), (2, "b", "complete"), (3, "", "streaming")]
    assert Message.objects.get(pk=assistant.pk).lease_expires_at is not None
    chat.refresh_from_db()
    assert chat.last_sequence == 3


@pytest.mark.django_db(transaction=True)  # the refused statement ends its transaction
def test_appending_to_a_chat_that_is_gone_stores_nothing(chat):
    Chat.objects.filter(pk=chat.pk).delete()
    with pytest.raises(Chat.DoesNotExist):
        services.messages_append(chat=chat, messages=[{"role": "user", "content": "late"}])
    assert not Message.objects.filter(chat_id=chat.pk).exists()
