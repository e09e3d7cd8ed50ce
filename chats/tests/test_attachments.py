"""Images and documents in chats: stored outside the message rows, read back by URL,
sent to the model again with the history, deleted with their chat or subtenant."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.files.storage import FileSystemStorage
from django.test import Client
from websockets.asyncio.client import connect

from chats import history
from chats.models import Attachment, Chat, Message
from conftest import async_client_for, client_for, read_sse
from providers.core.content import DocumentPart, ImagePart, TextPart
from tools.mcp.testing import TINY_PDF, TINY_PNG, McpTestServer

pytestmark = pytest.mark.django_db(transaction=True)

PNG_URI = "data:image/png;base64," + base64.b64encode(TINY_PNG).decode()
PDF_URI = "data:application/pdf;base64," + base64.b64encode(TINY_PDF).decode()
URL_RE = re.compile(r"^/api/v1/chats/(?P<chat>[0-9a-f-]{36})/attachments/(?P<id>[0-9a-f-]{36})$")


@pytest.fixture
def root(attachments_root) -> Path:
    """The folder of this test's attachment files (see the root conftest)."""
    return attachments_root


@pytest.fixture
def setup(make_tenant, llm_fakes):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, title="t", provider="openai")
    return chat, raw, async_client_for(raw), llm_fakes


@pytest.fixture
def http(setup):
    """The chat's owner, for tests that are not async."""
    return client_for(setup[1])


def post(http, chat, content) -> None:
    response = http.post(f"/api/v1/chats/{chat.id}/messages", {"content": content}, format="json")
    assert response.status_code == 200, response.content


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def image_and_pdf(text: str = "What is in these?") -> list[dict]:
    return [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": PNG_URI, "detail": "low"}},
        {"type": "file", "file": {"file_data": PDF_URI, "filename": "q3.pdf"}},
    ]


async def send(client, chat, content, path="messages"):
    return await client.post(
        f"/api/v1/chats/{chat.id}/{path}", {"content": content}, content_type="application/json"
    )


def sent_user_content(fake) -> list:
    """The content of the last user message the fake vendor received."""
    messages = fake.chat_requests()[-1].body["messages"]
    return [m for m in messages if m["role"] == "user"][-1]["content"]


def assert_our_parts(parts: list[dict], chat: Chat) -> tuple[str, str]:
    """The read-back shape of `image_and_pdf()`; the two URLs."""
    text, image, document = parts
    assert text == {"type": "text", "text": "What is in these?"}
    assert image["type"] == "image_url" and image["image_url"]["detail"] == "low"
    assert document["type"] == "file" and document["file"]["filename"] == "q3.pdf"
    urls = image["image_url"]["url"], document["file"]["url"]
    for part, url, media_type, size in [
        (image, urls[0], "image/png", len(TINY_PNG)),
        (document, urls[1], "application/pdf", len(TINY_PDF)),
    ]:
        match = URL_RE.match(url)
        assert match and match["chat"] == str(chat.id), url
        assert part["attachment"]["url"] == url and part["attachment"]["id"] == match["id"]
        assert part["attachment"]["media_type"] == media_type
        assert part["attachment"]["size"] == size
    return urls


# -- a send with an image and a PDF --------------------------------------------------


async def test_an_image_and_a_pdf_are_stored_read_back_by_url_and_sent_to_the_model(setup, root):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="A red square and a Q3 report.")
    response = await send(client, chat, image_and_pdf())
    assert response.status_code == 200, response.content

    received = sent_user_content(fakes.openai)
    assert received[0] == {"type": "text", "text": "What is in these?"}
    assert received[1] == {"type": "image_url", "image_url": {"url": PNG_URI, "detail": "low"}}
    assert received[2]["type"] == "file"
    assert received[2]["file"]["file_data"] == PDF_URI

    stored_input = response.json()["input_messages"][0]
    assert stored_input["content"] == "What is in these?"
    image_url, pdf_url = assert_our_parts(stored_input["parts"], chat)
    assert response.json()["message"]["parts"] is None  # text-only messages: null

    listed = (await client.get(f"/api/v1/chats/{chat.id}/messages")).json()["results"]
    assert [m["role"] for m in listed] == ["user", "assistant"]
    assert assert_our_parts(listed[0]["parts"], chat) == (image_url, pdf_url)
    detail = (await client.get(f"/api/v1/chats/{chat.id}")).json()
    assert detail["messages"][0]["parts"] == listed[0]["parts"]

    # The rows hold references, not the bytes; the files hold the bytes.
    row = await Message.objects.aget(chat=chat, role="user")
    assert PNG_URI.split(",")[1] not in json.dumps(row.parts)
    assert sorted(p.read_bytes() for p in files_in(root)) == sorted([TINY_PNG, TINY_PDF])
    assert await Attachment.objects.filter(chat=chat).acount() == 2


async def test_a_chat_on_anthropic_gets_image_and_document_blocks(setup):
    chat, _, client, fakes = setup
    await Chat.objects.filter(pk=chat.pk).aupdate(provider="anthropic")
    fakes.anthropic.enqueue(text="Seen.")
    response = await send(client, chat, image_and_pdf())
    assert response.status_code == 200, response.content
    blocks = sent_user_content(fakes.anthropic)
    assert [b["type"] for b in blocks] == ["text", "image", "document"]
    assert blocks[1]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": PNG_URI.split(",")[1],
    }
    assert blocks[2]["source"]["data"] == PDF_URI.split(",")[1]
    assert blocks[2]["title"] == "q3.pdf"


async def test_a_chat_on_ollama_gets_images_and_refuses_documents_first(setup, root):
    chat, _, client, fakes = setup
    await Chat.objects.filter(pk=chat.pk).aupdate(provider="local")
    response = await send(client, chat, image_and_pdf())
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["type"], error["details"]) == ("unsupported_content", {"part": "content[2]"})
    assert not await Message.objects.filter(chat=chat).aexists()
    assert files_in(root) == [] and fakes.local.chat_requests() == []

    fakes.local.enqueue(text="Red.")
    response = await send(client, chat, image_and_pdf()[:2])
    assert response.status_code == 200, response.content
    messages = fakes.local.chat_requests()[-1].body["messages"]
    assert messages[-1] == {
        "role": "user",
        "content": "What is in these?",
        "images": [PNG_URI.split(",")[1]],
    }


async def test_the_owner_fetches_the_bytes_and_other_tenants_get_404(setup, make_tenant):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="ok")
    response = await send(client, chat, image_and_pdf())
    image_url, pdf_url = assert_our_parts(response.json()["input_messages"][0]["parts"], chat)

    image = await client.get(image_url, headers={"Accept": "image/*"})
    assert image.status_code == 200
    assert image.content == TINY_PNG
    assert image["Content-Type"] == "image/png"
    assert image["Content-Disposition"].startswith("inline")
    assert image["X-Content-Type-Options"] == "nosniff"
    assert image["Content-Security-Policy"] == "sandbox"

    pdf = await client.get(pdf_url)
    assert pdf.status_code == 200 and pdf.content == TINY_PDF
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == 'attachment; filename="q3.pdf"'
    assert pdf["Content-Security-Policy"] == "sandbox"

    _, other_raw, _ = await sync_to_async(make_tenant)("other")
    for url in (image_url, pdf_url):
        refused = await async_client_for(other_raw).get(url)
        assert refused.status_code == 404
        assert set(refused.json()["error"]) == {"type", "message", "details"}
        assert refused.json()["error"]["type"] == "not_found"
    # An attachment id under another chat of the same tenant is not found either.
    other_chat = await Chat.objects.acreate(subtenant=chat.subtenant, title="other")
    attachment_id = URL_RE.match(image_url)["id"]
    elsewhere = f"/api/v1/chats/{other_chat.id}/attachments/{attachment_id}"
    assert (await client.get(elsewhere)).status_code == 404
    assert (await async_client_for(None).get(image_url)).status_code == 401


async def test_an_admin_key_fetches_any_tenants_attachment(setup, admin_key):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="ok")
    response = await send(client, chat, image_and_pdf())
    image_url, _ = assert_our_parts(response.json()["input_messages"][0]["parts"], chat)
    fetched = await async_client_for(admin_key).get(image_url)
    assert fetched.status_code == 200 and fetched.content == TINY_PNG


async def test_an_image_by_https_url_is_kept_as_sent_without_a_file(setup, root):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="ok")
    content = [
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": "https://img.example/cat.png"}},
    ]
    response = await send(client, chat, content)
    assert response.status_code == 200, response.content
    assert response.json()["input_messages"][0]["parts"] == content
    assert sent_user_content(fakes.openai)[1] == content[1]
    assert files_in(root) == [] and await Attachment.objects.acount() == 0


async def test_a_streamed_send_shows_the_parts_in_its_events(setup):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="streamed answer", chunks=3)
    response = await send(client, chat, image_and_pdf(), path="messages/stream")
    events = await read_sse(response)
    created = events[0][1]
    assert events[0][0] == "message.created"
    assert_our_parts(created["input_messages"][0]["parts"], chat)
    assert events[-1][0] == "message.completed"
    assert_our_parts(events[-1][1]["input_messages"][0]["parts"], chat)


async def test_a_text_only_send_reads_back_with_null_parts(setup):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="hi")
    text_parts = [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]
    response = await send(client, chat, text_parts)
    assert response.status_code == 200, response.content
    assert response.json()["input_messages"][0]["content"] == "Hello"
    listed = (await client.get(f"/api/v1/chats/{chat.id}/messages")).json()["results"]
    assert [m["parts"] for m in listed] == [None, None]
    assert sent_user_content(fakes.openai) == "Hello"


# -- history ---------------------------------------------------------------------------


async def test_the_next_turn_sends_the_first_turns_image_and_pdf_again(setup):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="A red square.")
    assert (await send(client, chat, image_and_pdf())).status_code == 200
    fakes.openai.enqueue(text="Red.")
    assert (await send(client, chat, "Which colour was it?")).status_code == 200

    messages = fakes.openai.chat_requests()[-1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    first = messages[0]["content"]
    assert first[0] == {"type": "text", "text": "What is in these?"}
    assert first[1] == {"type": "image_url", "image_url": {"url": PNG_URI, "detail": "low"}}
    assert first[2]["file"]["file_data"] == PDF_URI
    assert messages[2]["content"] == "Which colour was it?"


def test_history_rebuilds_the_parts_with_their_bytes_from_storage(setup, http):
    chat, _, _, fakes = setup
    fakes.openai.enqueue(text="ok")
    post(http, chat, image_and_pdf())

    user, assistant = history.load_recent(chat=chat)
    assert user.role == "user" and user.content == "What is in these?"
    assert user.parts == (
        TextPart("What is in these?"),
        ImagePart("image/png", TINY_PNG, detail="low"),
        DocumentPart("application/pdf", TINY_PDF, "q3.pdf"),
    )
    assert assistant.parts == ()
    row = Message.objects.get(chat=chat, role="user")
    assert history.to_normalized(row) == user


def test_an_attachment_whose_file_is_gone_becomes_a_note(setup, http, root):
    chat, _, _, fakes = setup
    fakes.openai.enqueue(text="ok")
    post(http, chat, image_and_pdf())
    for path in files_in(root):
        path.unlink()
    [user, _] = history.load_recent(chat=chat)
    assert user.parts == (
        TextPart("What is in these?"),
        TextPart("[image no longer available]"),
        TextPart("[document no longer available]"),
    )


def test_images_too_old_for_the_context_are_not_read(setup, http, settings, monkeypatch):
    chat, _, _, fakes = setup
    fakes.openai.enqueue(text="first")
    post(http, chat, image_and_pdf())
    fakes.openai.enqueue(text="second")
    post(http, chat, "x" * 400)
    opened: list[str] = []
    original = FileSystemStorage.open

    def counting_open(self, name, mode="rb"):  # type: ignore[no-untyped-def]
        opened.append(name)
        return original(self, name, mode)

    monkeypatch.setattr(FileSystemStorage, "open", counting_open)
    settings.CHAT_CONTEXT_MAX_TOKENS = 300  # room for all but the first message
    recent = history.load_recent(chat=chat)
    assert [m.content for m in recent] == ["first", "x" * 400, "second"]
    assert opened == []
    settings.CHAT_CONTEXT_MAX_TOKENS = 16_000
    assert len(history.load_recent(chat=chat)) == 4
    assert len(opened) == 2


# -- refusals: nothing stored ----------------------------------------------------------


async def test_an_oversize_image_is_413_and_nothing_is_stored(setup, settings, root):
    chat, _, client, fakes = setup
    settings.CONTENT_PART_MAX_BYTES = len(TINY_PNG) - 1
    response = await send(client, chat, image_and_pdf())
    assert response.status_code == 413, response.content
    error = response.json()["error"]
    assert error["type"] == "content_too_large"
    assert error["details"] == {"part": "content[1]"}
    assert await Message.objects.filter(chat=chat).acount() == 0
    assert await Attachment.objects.acount() == 0
    assert files_in(root) == []
    assert fakes.openai.chat_requests() == []


@pytest.mark.parametrize(
    ("part", "where"),
    [
        ({"type": "image_url", "image_url": {"url": "http://plain.example/a.png"}}, "content[1]"),
        ({"type": "image_url", "image_url": {"url": PDF_URI}}, "content[1]"),
        (
            {
                "type": "file",
                "file": {"file_data": PNG_URI.replace("image/png", "application/pdf")},
            },
            "content[1]",
        ),
        ({"type": "input_audio", "input_audio": {}}, "content[1]"),
    ],
)
async def test_an_invalid_part_is_400_and_nothing_is_stored(setup, root, part, where):
    chat, _, client, fakes = setup
    response = await send(client, chat, [{"type": "text", "text": "hi"}, part])
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"] == {"part": where}
    assert await Message.objects.filter(chat=chat).acount() == 0
    assert files_in(root) == [] and fakes.openai.chat_requests() == []


async def test_content_must_be_text_or_parts(setup):
    chat, _, client, _ = setup
    for content in ("", None, {"type": "text"}, []):
        response = await send(client, chat, content)
        assert response.status_code == 400, (content, response.content)
    assert await Message.objects.filter(chat=chat).acount() == 0


# -- one file per image per chat ------------------------------------------------------


async def test_the_same_image_sent_twice_is_one_attachment_and_one_file(setup, root):
    chat, _, client, fakes = setup
    twice = [
        {"type": "image_url", "image_url": {"url": PNG_URI}},
        {"type": "image_url", "image_url": {"url": PNG_URI, "detail": "high"}},
    ]
    fakes.openai.enqueue(text="one")
    first = await send(client, chat, twice)
    fakes.openai.enqueue(text="two")
    second = await send(client, chat, [{"type": "image_url", "image_url": {"url": PNG_URI}}])
    assert first.status_code == second.status_code == 200, (first.content, second.content)

    urls = {p["image_url"]["url"] for p in first.json()["input_messages"][0]["parts"]}
    urls |= {p["image_url"]["url"] for p in second.json()["input_messages"][0]["parts"]}
    assert len(urls) == 1
    assert await Attachment.objects.filter(chat=chat).acount() == 1
    assert [p.read_bytes() for p in files_in(root)] == [TINY_PNG]

    # The same bytes in another chat are that chat's own attachment.
    other = await Chat.objects.acreate(subtenant=chat.subtenant, provider="openai")
    fakes.openai.enqueue(text="three")
    assert (await send(client, other, twice[:1])).status_code == 200
    assert await Attachment.objects.acount() == 2 and len(files_in(root)) == 2


# -- deletion --------------------------------------------------------------------------


async def test_deleting_a_chat_deletes_its_attachments_and_files(setup, root):
    chat, _, client, fakes = setup
    kept = await Chat.objects.acreate(subtenant=chat.subtenant, provider="openai")
    for target in (chat, kept):
        fakes.openai.enqueue(text="ok")
        assert (await send(client, target, image_and_pdf())).status_code == 200
    assert len(files_in(root)) == 4

    assert (await client.delete(f"/api/v1/chats/{chat.id}")).status_code == 204
    assert await Attachment.objects.filter(chat_id=chat.id).acount() == 0
    remaining = files_in(root)
    assert len(remaining) == 2 and all(str(kept.id) in str(p) for p in remaining)
    assert await Attachment.objects.filter(chat=kept).acount() == 2


async def test_deleting_a_subtenant_deletes_its_attachments_and_files(setup, root, admin_key):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="ok")
    assert (await send(client, chat, image_and_pdf())).status_code == 200
    assert len(files_in(root)) == 2

    deleted = await async_client_for(admin_key).delete(f"/api/v1/subtenants/{chat.subtenant_id}")
    assert deleted.status_code == 204
    assert await Attachment.objects.acount() == 0
    assert files_in(root) == []


# -- tool results and the X-Chat-ID path -----------------------------------------------


@pytest.fixture(scope="module")
def media_server():
    with McpTestServer("streamable_http", name="files") as server:
        yield server


async def test_a_server_tools_images_and_documents_are_stored_with_its_message(
    setup, media_server, settings, root
):
    chat, _, client, fakes = setup
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    registered = await client.post(
        "/api/v1/mcp/servers",
        {"name": "files", "url": media_server.url, "protocol": "http"},
        content_type="application/json",
    )
    assert registered.status_code == 201, registered.content
    fakes.openai.enqueue(tool_calls=[{"name": "files__media", "arguments": {}}])
    fakes.openai.enqueue(text="Sales rose.")
    response = await send(client, chat, "Summarize Q3")
    assert response.status_code == 200, response.content

    tool = next(m for m in response.json()["messages"] if m["role"] == "tool")
    binaries = [p for p in tool["parts"] if "attachment" in p]
    assert [p["attachment"]["media_type"] for p in binaries] == ["image/png", "application/pdf"]
    for part in binaries:
        fetched = await client.get(part["attachment"]["url"])
        assert fetched.content in (TINY_PNG, TINY_PDF)
    assert sorted(p.read_bytes() for p in files_in(root)) == sorted([TINY_PNG, TINY_PDF])

    # The next turn gives the model the tool's image again, from storage.
    fakes.openai.enqueue(text="Still rose.")
    assert (await send(client, chat, "And?")).status_code == 200
    sent = json.dumps(fakes.openai.chat_requests()[-1].body["messages"])
    assert PNG_URI in sent and PDF_URI in sent


async def test_an_exchange_with_x_chat_id_stores_the_image(setup, root):
    chat, _, client, fakes = setup
    fakes.openai.enqueue(text="A square.")
    response = await client.post(
        "/v1/chat/completions",
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": image_and_pdf()}]},
        content_type="application/json",
        headers={"X-Chat-ID": str(chat.id)},
    )
    assert response.status_code == 200, response.content
    for _ in range(50):  # the exchange's rows are final shortly after the answer
        listed = (await client.get(f"/api/v1/chats/{chat.id}/messages")).json()["results"]
        if listed and listed[-1]["status"] != "streaming":
            break
        await asyncio.sleep(0.05)
    assert listed[0]["role"] == "user"
    assert_our_parts(listed[0]["parts"], chat)
    assert sorted(p.read_bytes() for p in files_in(root)) == sorted([TINY_PNG, TINY_PDF])


# -- WebSocket -------------------------------------------------------------------------


async def test_a_websocket_send_with_parts_is_stored_and_answered(
    live_server_url, make_tenant, llm_fakes, root
):
    subtenant, raw, _ = await sync_to_async(make_tenant)("acme")
    chat = await Chat.objects.acreate(subtenant=subtenant, provider="openai")
    llm_fakes.openai.enqueue(text="A red square.")
    url = live_server_url.replace("http://", "ws://", 1) + f"/ws/chats/{chat.id}/"
    headers = {"Authorization": f"Bearer {raw}"}
    async with connect(url, additional_headers=headers, open_timeout=10, max_size=None) as ws:
        bad = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
        await ws.send(json.dumps({"type": "message.send", "content": [bad]}))
        refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert refused["type"] == "error"
        assert refused["error"]["details"] == {"part": "content[0]"}

        await ws.send(json.dumps({"type": "message.send", "content": image_and_pdf()}))
        frames = []
        while not frames or frames[-1]["type"] not in ("message.completed", "error"):
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    assert frames[-1]["type"] == "message.completed", frames[-1]
    assert_our_parts(frames[0]["input_messages"][0]["parts"], chat)
    assert sent_user_content(llm_fakes.openai)[1]["image_url"]["url"] == PNG_URI
    assert await Message.objects.filter(chat=chat).acount() == 2
    assert len(files_in(root)) == 2


# -- schema and admin ------------------------------------------------------------------


def test_the_schema_describes_the_attachment_endpoint(admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/chats/{chat_pk}/attachments/{attachment_id}"]["get"]
    assert {"image/png", "application/pdf"} <= set(operation["responses"]["200"]["content"])
    assert "404" in operation["responses"]
    send = schema["components"]["schemas"]["SendMessageRequest"]["properties"]["content"]
    assert {"type": "string"} in send["oneOf"]


def test_the_admin_shows_thumbnails_and_serves_attachments_to_staff_only(setup, http):
    chat, _, _, fakes = setup
    fakes.openai.enqueue(text="ok")
    post(http, chat, image_and_pdf())
    message = Message.objects.get(chat=chat, role="user")
    image = Attachment.objects.get(chat=chat, media_type="image/png")
    pdf = Attachment.objects.get(chat=chat, media_type="application/pdf")

    User.objects.create_superuser("root", "root@example.com", "a-long-passphrase")
    browser = Client()
    browser.login(username="root", password="a-long-passphrase")
    page = browser.get(f"/admin/chats/message/{message.id}/change/").content.decode()
    image_src = f"/admin/chats/attachment/{image.id}/file/"
    assert f'<img src="{image_src}"' in page
    assert f'/admin/chats/attachment/{pdf.id}/file/">q3.pdf</a>' in page
    chat_page = browser.get(f"/admin/chats/chat/{chat.id}/change/").content.decode()
    assert chat_page.count(f'<img src="{image_src}"') == 2  # the message's and the list's
    assert browser.get("/admin/chats/attachment/").status_code == 200
    assert browser.get(f"/admin/chats/attachment/{image.id}/change/").status_code == 200
    served = browser.get(image_src)
    assert served.status_code == 200 and served.content == TINY_PNG
    assert served["Content-Security-Policy"] == "sandbox"

    User.objects.create_user("guest", "guest@example.com", "another-passphrase")
    stranger = Client()
    stranger.login(username="guest", password="another-passphrase")
    assert stranger.get(image_src).status_code == 302  # to the admin login
    assert Client().get(image_src).status_code == 302
