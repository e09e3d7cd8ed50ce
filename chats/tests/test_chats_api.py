import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chats.models import Chat, Message

pytestmark = pytest.mark.django_db


def add_messages(chat: Chat, count: int) -> None:
    start = chat.last_sequence
    Message.objects.bulk_create(
        [
            Message(
                chat=chat,
                sequence=start + i + 1,
                role="user" if i % 2 == 0 else "assistant",
                content=f"m{start + i + 1}",
            )
            for i in range(count)
        ]
    )
    chat.last_sequence = start + count
    chat.save(update_fields=["last_sequence"])


def test_chat_crud_through_the_api(make_tenant):
    subtenant, _, client = make_tenant()
    created = client.post(
        f"/api/v1/subtenants/{subtenant.id}/chats",
        {
            "title": "Support",
            "provider": "anthropic",
            "model": "claude-x",
            "system_prompt": "Be brief.",
            "params": {"temperature": 0.2, "max_tokens": 256},
            "metadata": {"ticket": 42},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    chat = created.json()
    assert chat["subtenant"] == str(subtenant.id)
    assert chat["params"] == {"temperature": 0.2, "max_tokens": 256}

    detail = client.get(f"/api/v1/chats/{chat['id']}").json()
    assert detail["title"] == "Support" and detail["messages"] == []

    updated = client.put(f"/api/v1/chats/{chat['id']}", {"title": "Billing"}, format="json")
    assert updated.status_code == 200
    assert updated.json()["title"] == "Billing"
    assert updated.json()["system_prompt"] == "Be brief."

    listed = client.get(f"/api/v1/subtenants/{subtenant.id}/chats").json()
    assert [c["id"] for c in listed["results"]] == [chat["id"]]

    assert client.delete(f"/api/v1/chats/{chat['id']}").status_code == 204
    assert client.get(f"/api/v1/chats/{chat['id']}").status_code == 404


def test_chat_detail_includes_messages_in_order(make_tenant):
    subtenant, _, client = make_tenant()
    chat = Chat.objects.create(subtenant=subtenant)
    add_messages(chat, 3)
    detail = client.get(f"/api/v1/chats/{chat.id}").json()
    assert [m["sequence"] for m in detail["messages"]] == [1, 2, 3]
    assert detail["message_count"] == 3


def test_messages_are_listed_chronologically_and_paginated(make_tenant):
    subtenant, _, client = make_tenant()
    chat = Chat.objects.create(subtenant=subtenant)
    add_messages(chat, 7)
    first = client.get(f"/api/v1/chats/{chat.id}/messages?limit=5").json()
    assert first["count"] == 7
    assert [m["content"] for m in first["results"]] == ["m1", "m2", "m3", "m4", "m5"]
    second = client.get(first["next"]).json()
    assert [m["sequence"] for m in second["results"]] == [6, 7]


def test_message_list_query_count_does_not_grow_with_rows(make_tenant):
    subtenant, _, client = make_tenant()
    chat = Chat.objects.create(subtenant=subtenant)
    add_messages(chat, 2)
    client.get(f"/api/v1/chats/{chat.id}/messages")
    with CaptureQueriesContext(connection) as few:
        client.get(f"/api/v1/chats/{chat.id}/messages")
    add_messages(chat, 60)
    with CaptureQueriesContext(connection) as many:
        client.get(f"/api/v1/chats/{chat.id}/messages?limit=60")
    assert len(many) == len(few)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"params": {"temperature": 5}}, "params"),
        ({"params": {"max_tokens": "many"}}, "params"),
        ({"params": {"unknown": 1}}, "params"),
        ({"title": "x" * 201}, "title"),
        ({"provider": "acme-llm"}, "provider"),
        ({"metadata": [1, 2]}, "metadata"),
    ],
)
def test_invalid_chat_names_the_field(make_tenant, body, field):
    subtenant, _, client = make_tenant()
    response = client.post(f"/api/v1/subtenants/{subtenant.id}/chats", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not Chat.objects.exists()


def test_chat_body_cannot_name_another_subtenant(make_tenant):
    mine, _, client = make_tenant("mine")
    other, _, _ = make_tenant("other")
    response = client.post(
        f"/api/v1/subtenants/{mine.id}/chats",
        {"title": "t", "subtenant": str(other.id), "id": "00000000-0000-0000-0000-000000000009"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["subtenant"] == str(mine.id)
    assert response.json()["id"] != "00000000-0000-0000-0000-000000000009"
    chat_id = response.json()["id"]
    client.put(f"/api/v1/chats/{chat_id}", {"subtenant": str(other.id)}, format="json")
    assert Chat.objects.get(pk=chat_id).subtenant_id == mine.id
    assert not Chat.objects.filter(subtenant=other).exists()


def test_subtenant_key_gets_404_on_every_chat_endpoint_of_another_tenant(make_tenant):
    victim, _, _ = make_tenant("victim")
    chat = Chat.objects.create(subtenant=victim, title="private")
    add_messages(chat, 2)
    _, _, attacker = make_tenant("attacker")
    responses = [
        attacker.get(f"/api/v1/subtenants/{victim.id}/chats"),
        attacker.post(f"/api/v1/subtenants/{victim.id}/chats", {"title": "x"}, format="json"),
        attacker.get(f"/api/v1/chats/{chat.id}"),
        attacker.put(f"/api/v1/chats/{chat.id}", {"title": "pwned"}, format="json"),
        attacker.delete(f"/api/v1/chats/{chat.id}"),
        attacker.get(f"/api/v1/chats/{chat.id}/messages"),
    ]
    assert [r.status_code for r in responses] == [404] * len(responses)
    assert all(r.json()["error"]["type"] == "not_found" for r in responses)
    chat.refresh_from_db()
    assert chat.title == "private" and chat.messages.count() == 2
    assert Chat.objects.count() == 1


def test_admin_key_reaches_any_tenants_chat(admin_client, make_tenant):
    subtenant, _, _ = make_tenant()
    chat = Chat.objects.create(subtenant=subtenant)
    assert admin_client.get(f"/api/v1/chats/{chat.id}").status_code == 200


def test_subtenant_key_cannot_learn_another_tenants_connection_names(make_tenant, admin_client):
    acme, _, acme_client = make_tenant("acme")
    other, _, other_client = make_tenant("other")
    created = acme_client.post(
        "/api/v1/connections",
        {"name": "acme-private", "kind": "openai", "api_key": "sk-acme-own-key-1234"},
        format="json",
    )
    assert created.status_code == 201, created.content
    shared = admin_client.post(
        "/api/v1/connections", {"name": "shared-llm", "kind": "openai"}, format="json"
    )
    assert shared.status_code == 201, shared.content

    def create(client, subtenant, provider):
        return client.post(
            f"/api/v1/subtenants/{subtenant.id}/chats", {"provider": provider}, format="json"
        )

    # Another tenant's connection answers exactly as a name nobody uses.
    probed = create(other_client, other, "acme-private")
    unused = create(other_client, other, "nobody-uses")
    assert probed.status_code == unused.status_code == 400
    assert probed.json() == unused.json()
    assert "provider" in probed.json()["error"]["details"]
    # An admin key creating the other tenant's chat sees what that tenant sees.
    assert create(admin_client, other, "acme-private").json() == unused.json()
    # Changing a chat is checked the same way.
    chat = create(other_client, other, "shared-llm")
    assert chat.status_code == 201, chat.content
    changed = other_client.put(
        f"/api/v1/chats/{chat.json()['id']}", {"provider": "acme-private"}, format="json"
    )
    assert changed.status_code == 400 and changed.json() == unused.json()
    assert Chat.objects.get(pk=chat.json()["id"]).provider == "shared-llm"
    # The owner uses its own connection's name; everyone the global one's.
    assert create(acme_client, acme, "acme-private").status_code == 201
    assert create(acme_client, acme, "shared-llm").status_code == 201
    assert not Chat.objects.filter(subtenant=other, provider="acme-private").exists()
