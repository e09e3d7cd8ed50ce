"""The chat WebSocket, through Channels' communicator on the configured channel layer
(in-memory without REDIS_URL, Redis with it)."""

import asyncio

import httpx
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from chats.models import Chat, Message
from conftest import async_client_for
from llmwrapper.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(make_tenant, llm_fakes):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, title="t", provider="openai")
    return chat, raw, llm_fakes


def connect_to(chat, raw_key=None, *, origin=None, query=""):
    headers = []
    if raw_key:
        headers.append((b"authorization", f"Bearer {raw_key}".encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    return WebsocketCommunicator(application, f"/ws/chats/{chat.id}/{query}", headers=headers)


async def refused_with(ws) -> tuple[str, int]:
    """A refused socket is accepted, sent an error frame, then closed: (type, code)."""
    connected, _ = await ws.connect()
    assert connected
    frame = await ws.receive_json_from()
    closed = await ws.receive_output()
    assert closed["type"] == "websocket.close"
    return frame["error"]["type"], closed["code"]


async def receive_until_end(ws, timeout=5):
    frames = []
    while True:
        frame = await ws.receive_json_from(timeout=timeout)
        frames.append(frame)
        if frame["type"] in ("message.completed", "error"):
            return frames


async def test_websocket_send_streams_the_same_events_and_persists(setup):
    chat, raw, fakes = setup
    fakes.openai.enqueue(text="one two three four", chunks=4)
    ws = connect_to(chat, raw)
    connected, _ = await ws.connect()
    assert connected
    await ws.send_json_to({"type": "message.send", "content": "Hi"})
    frames = await receive_until_end(ws)
    types = [f["type"] for f in frames]
    assert types[0] == "message.created" and types[-1] == "message.completed"
    assert types.count("delta") >= 3
    text = "".join(f["text"] for f in frames if f["type"] == "delta")
    stored = await Message.objects.filter(chat=chat, role="assistant").afirst()
    assert stored.content == text == "one two three four"
    assert stored.status == "complete"
    await ws.disconnect()


async def test_two_messages_in_a_row_on_one_connection(setup):
    chat, raw, fakes = setup
    fakes.openai.enqueue(text="first").enqueue(text="second")
    ws = connect_to(chat, raw)
    await ws.connect()
    await ws.send_json_to({"type": "message.send", "content": "1"})
    await ws.send_json_to({"type": "message.send", "content": "2"})
    first = await receive_until_end(ws)
    second = await receive_until_end(ws)
    assert first[-1]["message"]["content"] == "first"
    assert second[-1]["message"]["content"] == "second"
    roles = [m.role async for m in Message.objects.filter(chat=chat).order_by("sequence")]
    assert roles == ["user", "assistant", "user", "assistant"]
    await ws.disconnect()


async def test_malformed_frames_get_an_error_frame_and_the_connection_stays_open(setup):
    chat, raw, fakes = setup
    ws = connect_to(chat, raw)
    await ws.connect()
    await ws.send_to(text_data="{not json")
    assert (await ws.receive_json_from())["error"]["type"] == "malformed_request"
    await ws.send_json_to({"type": "message.send", "temperature": 7})
    error = (await ws.receive_json_from())["error"]
    assert error["type"] == "validation_error" and "temperature" in error["details"]
    await ws.send_json_to({"type": "dance"})
    assert (await ws.receive_json_from())["type"] == "error"
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from() == {"type": "pong"}
    assert fakes.openai.chat_requests() == []
    await ws.disconnect()


@pytest.mark.parametrize("raw_key", [None, "lw_wrong"])
async def test_bad_key_closes_with_4001(setup, raw_key):
    chat, _, _ = setup
    assert await refused_with(connect_to(chat, raw_key)) == ("unauthenticated", 4001)


async def test_key_in_query_parameter_is_accepted(setup):
    chat, raw, _ = setup
    ws = connect_to(chat, query=f"?api_key={raw}")
    connected, _ = await ws.connect()
    assert connected
    await ws.disconnect()


async def test_another_tenants_chat_closes_with_4004(setup, make_tenant):
    chat, _, _ = setup
    _, intruder_key, _ = await sync_to_async(make_tenant)("intruder")
    assert await refused_with(connect_to(chat, intruder_key)) == ("not_found", 4004)


async def test_origin_outside_the_allowlist_closes_with_4003(setup):
    chat, raw, _ = setup
    refused = await refused_with(connect_to(chat, raw, origin="https://evil.example"))
    assert refused == ("permission_denied", 4003)
    ws = connect_to(chat, raw, origin=settings.WEBSOCKET_ALLOWED_ORIGINS[0])
    assert (await ws.connect())[0]
    await ws.disconnect()


async def test_second_connection_sees_a_message_sent_over_http(setup):
    chat, raw, fakes = setup
    fakes.openai.enqueue(text="seen by the viewer", chunks=3)
    viewer = connect_to(chat, raw)
    assert (await viewer.connect())[0]
    client = async_client_for(raw)
    response = await client.post(
        f"/api/v1/chats/{chat.id}/messages", {"content": "hi"}, content_type="application/json"
    )
    assert response.status_code == 200
    frames = await receive_until_end(viewer)
    assert frames[0]["type"] == "message.created" and frames[0]["origin"] == "other"
    assert frames[-1]["message"]["content"] == "seen by the viewer"
    await viewer.disconnect()


async def test_second_socket_sees_the_first_sockets_stream(setup):
    chat, raw, fakes = setup
    fakes.openai.enqueue(text="shared answer", chunks=2)
    sender, viewer = connect_to(chat, raw), connect_to(chat, raw)
    await sender.connect()
    await viewer.connect()
    await sender.send_json_to({"type": "message.send", "content": "hi"})
    sent = await receive_until_end(sender)
    seen = await receive_until_end(viewer)
    assert [f["type"] for f in seen] == [f["type"] for f in sent]
    assert all("origin" not in f for f in sent)
    await sender.disconnect()
    await viewer.disconnect()


async def test_cancel_and_disconnect_keep_partial_text_as_interrupted(setup):
    chat, raw, fakes = setup
    words = " ".join(f"w{i}" for i in range(30))
    fakes.openai.enqueue(text=words, chunks=30, chunk_delay=0.05)
    ws = connect_to(chat, raw)
    await ws.connect()
    await ws.send_json_to({"type": "message.send", "content": "long"})
    frames = []
    while sum(f["type"] == "delta" for f in frames) < 2:
        frames.append(await ws.receive_json_from(timeout=5))
    await ws.send_json_to({"type": "cancel"})
    await asyncio.sleep(0.3)
    stored = await Message.objects.filter(chat=chat, role="assistant").afirst()
    assert stored.status == "interrupted"
    assert stored.content and len(stored.content) < len(words)

    fakes.openai.enqueue(text=words, chunks=30, chunk_delay=0.05)
    await ws.send_json_to({"type": "message.send", "content": "again"})
    frames = []
    while sum(f["type"] == "delta" for f in frames) < 2:
        frames.append(await ws.receive_json_from(timeout=5))
    await ws.disconnect()
    await asyncio.sleep(0.3)
    last = await Message.objects.filter(chat=chat, role="assistant").order_by("-sequence").afirst()
    assert last.status == "interrupted" and last.content


@pytest.mark.redis
def test_viewer_sees_a_message_sent_through_another_process(setup, app_process):
    """Two processes share the Redis channel layer: the viewer here, the sender there."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: the in-memory layer is per process")
    chat, raw, fakes = setup
    fakes.openai.enqueue(text="across processes", chunks=2)
    other = app_process(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fakes.openai.base_url)

    async def scenario():
        viewer = connect_to(chat, raw)
        assert (await viewer.connect())[0]
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{other}/api/v1/chats/{chat.id}/messages",
                json={"content": "hi"},
                headers={"Authorization": f"Bearer {raw}"},
            )
        assert response.status_code == 200, response.text
        frames = await receive_until_end(viewer)
        await viewer.disconnect()
        return frames

    frames = asyncio.run(scenario())
    assert frames[-1]["type"] == "message.completed"
    assert frames[-1]["message"]["content"] == "across processes"


async def test_an_error_has_the_same_body_over_http_and_websocket(setup):
    chat, raw, fakes = setup
    send = {"content": "hi", "fallbacks": ["nowhere/some-model"]}
    response = await async_client_for(raw).post(
        f"/api/v1/chats/{chat.id}/messages", send, content_type="application/json"
    )
    ws = connect_to(chat, raw)
    await ws.connect()
    await ws.send_json_to({"type": "message.send", **send})
    frames = await receive_until_end(ws)
    await ws.disconnect()
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "unknown_provider"
    assert frames == [{"type": "error", "error": response.json()["error"]}]
    assert fakes.openai.chat_requests() == []
