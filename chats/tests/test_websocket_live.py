"""The chat WebSocket as real clients meet it: a `websockets` client against the app
served by uvicorn (handshake answers, close codes, cancel, key re-checks, hostile frames,
the open-sockets gauge)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chats.models import Chat, Message
from tenants.models import ApiKey, Subtenant
from tenants.selectors import api_key_cache_clear
from tenants.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db(transaction=True)

TERMINAL = ("message.completed", "error")


@pytest.fixture
def env(live_server_url, make_tenant, llm_fakes):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, title="t", provider="openai")
    return live_server_url, chat, raw, llm_fakes


def ws_url(base: str, chat_id, *, slash: bool = True, query: str = "") -> str:
    path = f"/ws/chats/{chat_id}" + ("/" if slash else "")
    return base.replace("http://", "ws://", 1) + path + query


def open_socket(url: str, raw_key: str | None = None, *, origin: str | None = None):
    headers = {"Authorization": f"Bearer {raw_key}"} if raw_key else {}
    return connect(url, additional_headers=headers, origin=origin, open_timeout=10)


async def recv(ws, timeout: float = 10) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until_end(ws, timeout: float = 10) -> list[dict]:
    frames = []
    while True:
        frames.append(await recv(ws, timeout))
        if frames[-1]["type"] in TERMINAL:
            return frames


async def close_code(ws, timeout: float = 10) -> int | None:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    return ws.close_code


async def send_json(ws, frame: dict) -> None:
    await ws.send(json.dumps(frame))


# -- handshake answers and close codes ---------------------------------------------


@pytest.mark.parametrize("raw_key", [None, "lw_wrong"])
async def test_a_bad_key_is_accepted_then_closed_with_4001(env, raw_key):
    base, chat, _, _ = env
    async with open_socket(ws_url(base, chat.id), raw_key) as ws:
        frame = await recv(ws)
        assert frame["type"] == "error"
        assert frame["error"]["type"] == "unauthenticated"
        assert set(frame["error"]) == {"type", "message", "details"}
        assert await close_code(ws) == 4001


async def test_an_origin_outside_the_allowlist_is_closed_with_4003(env):
    base, chat, raw, _ = env
    async with open_socket(ws_url(base, chat.id), raw, origin="https://evil.example") as ws:
        frame = await recv(ws)
        assert frame["type"] == "error" and frame["error"]["details"]["origin"]
        assert await close_code(ws) == 4003


@pytest.mark.parametrize("whose", ["unknown", "another tenant's"])
async def test_a_chat_out_of_reach_is_closed_with_4004(env, make_tenant, whose):
    base, _, raw, _ = env
    chat_id = "00000000-0000-4000-8000-000000000000"
    if whose != "unknown":
        other, _, _ = await sync_to_async(make_tenant)("other")
        chat_id = (await Chat.objects.acreate(subtenant=other, title="x")).id
    async with open_socket(ws_url(base, chat_id), raw) as ws:
        frame = await recv(ws)
        assert frame["type"] == "error" and frame["error"]["type"] == "not_found"
        assert await close_code(ws) == 4004


async def test_the_path_without_a_trailing_slash_is_the_same_endpoint(env):
    base, chat, raw, fakes = env
    fakes.openai.enqueue(text="no slash needed")
    async with open_socket(ws_url(base, chat.id, slash=False), raw) as ws:
        await send_json(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}
        await send_json(ws, {"type": "message.send", "content": "hi"})
        frames = await until_end(ws)
        assert frames[-1]["type"] == "message.completed"
        assert frames[-1]["message"]["content"] == "no slash needed"


@pytest.mark.parametrize("path", ["/ws/nothing-here/", "/ws/chats/not-a-uuid/"])
async def test_an_unknown_websocket_path_is_closed_with_4004(env, path):
    base, _, raw, _ = env
    async with open_socket(base.replace("http://", "ws://", 1) + path, raw) as ws:
        frame = await recv(ws)
        assert frame["type"] == "error" and frame["error"]["type"] == "not_found"
        assert await close_code(ws) == 4004


# -- cancel ------------------------------------------------------------------------


async def test_cancel_ends_the_send_with_one_interrupted_completion(env):
    base, chat, raw, fakes = env
    words = " ".join(f"w{i}" for i in range(40))
    fakes.openai.enqueue(text=words, chunks=40, chunk_delay=0.1)
    async with (
        open_socket(ws_url(base, chat.id), raw) as ws,
        open_socket(ws_url(base, chat.id), raw) as viewer,
    ):
        await send_json(ws, {"type": "message.send", "content": "long"})
        frames = [await recv(ws)]
        assert frames[0]["type"] == "message.created"
        while sum(f["type"] == "delta" for f in frames) < 2:
            frames.append(await recv(ws))
        await send_json(ws, {"type": "cancel"})
        frames += await until_end(ws)
        end = frames[-1]
        assert end["type"] == "message.completed" and end["status"] == "interrupted"
        created_id = frames[0]["message"]["id"]
        assert end["message"]["id"] == created_id
        assert end["message"]["status"] == "interrupted"
        assert set(end["usage"]) == {"input_tokens", "output_tokens", "total_tokens"}
        sent_text = "".join(f["text"] for f in frames if f["type"] == "delta")
        stored = await Message.objects.aget(pk=created_id)
        assert stored.status == "interrupted"
        assert stored.content == end["message"]["content"]
        assert stored.content.startswith(sent_text) and len(stored.content) < len(words)

        # Exactly one terminal frame: the next answer on the socket is the pong.
        await send_json(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}
        # Viewers see the same end.
        seen = await until_end(viewer)
        assert seen[-1]["type"] == "message.completed" and seen[-1]["origin"] == "other"
        assert seen[-1]["message"]["id"] == created_id
        assert seen[-1]["message"]["content"] == stored.content

        # The socket goes on as before.
        fakes.openai.enqueue(text="after the cancel")
        await send_json(ws, {"type": "message.send", "content": "again"})
        frames = await until_end(ws)
        assert frames[-1]["type"] == "message.completed"
        assert frames[-1]["message"]["content"] == "after the cancel"


async def test_cancel_before_the_stream_starts_still_ends_the_send(env):
    base, chat, raw, fakes = env
    fakes.openai.enqueue(text="never seen", delay=1.0)
    async with open_socket(ws_url(base, chat.id), raw) as ws:
        await send_json(ws, {"type": "message.send", "content": "hi"})
        await send_json(ws, {"type": "cancel"})
        frames = await until_end(ws)
        assert [f["type"] for f in frames] == ["message.created", "message.completed"]
        end = frames[-1]
        assert end["status"] == "interrupted" and end["message"]["content"] == ""
        stored = await Message.objects.aget(pk=end["message"]["id"])
        assert (stored.status, stored.content) == ("interrupted", "")


# -- keys re-checked on open sockets -------------------------------------------------


async def _revoke(raw: str) -> None:
    key = await ApiKey.objects.aget(prefix=raw[:12])
    await sync_to_async(api_key_revoke)(key=key)


async def _deactivate(raw: str) -> None:
    key = await ApiKey.objects.select_related("subtenant").aget(prefix=raw[:12])
    await Subtenant.objects.filter(pk=key.subtenant_id).aupdate(is_active=False)
    api_key_cache_clear()


@pytest.mark.parametrize("lose_rights", [_revoke, _deactivate], ids=["revoked", "deactivated"])
async def test_a_send_after_the_key_lost_its_rights_closes_with_4001(env, lose_rights):
    base, chat, raw, fakes = env
    fakes.openai.enqueue(text="allowed")
    async with open_socket(ws_url(base, chat.id), raw) as ws:
        await send_json(ws, {"type": "message.send", "content": "first"})
        assert (await until_end(ws))[-1]["type"] == "message.completed"
        await lose_rights(raw)
        await send_json(ws, {"type": "message.send", "content": "second"})
        frame = await recv(ws)
        assert frame["type"] == "error" and frame["error"]["type"] == "unauthenticated"
        assert await close_code(ws) == 4001
    assert await Message.objects.filter(chat=chat, role="user").acount() == 1
    assert len(fakes.openai.chat_requests()) == 1


async def test_a_viewer_whose_key_was_revoked_gets_no_more_messages(env):
    base, chat, raw, fakes = env
    _, other_raw = await sync_to_async(api_key_create)(name="second", subtenant=chat.subtenant)
    fakes.openai.enqueue(text="not for the revoked viewer")
    async with open_socket(ws_url(base, chat.id), raw) as viewer:
        await send_json(viewer, {"type": "ping"})
        assert await recv(viewer) == {"type": "pong"}
        await _revoke(raw)
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{base}/api/v1/chats/{chat.id}/messages",
                json={"content": "hi"},
                headers={"Authorization": f"Bearer {other_raw}"},
            )
        assert response.status_code == 200, response.text
        frame = await recv(viewer)
        assert frame["type"] == "error" and frame["error"]["type"] == "unauthenticated"
        assert await close_code(viewer) == 4001


# -- hostile frames and the open-sockets gauge ---------------------------------------


GAUGE = "llmwrapper_active_streams"


async def open_sockets(base: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{base}/metrics")
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == GAUGE and sample.labels.get("transport") == "websocket":
                return sample.value
    return 0.0


async def gauge_settles_at(base: str, expected: float) -> float:
    """The gauge once the server has finished closing sockets (it does so after the
    client's close handshake returns)."""
    deadline = time.monotonic() + 10
    while (current := await open_sockets(base)) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return current


async def test_deeply_nested_frames_get_an_error_and_the_socket_stays_usable(env):
    base, chat, raw, fakes = env
    idle = await open_sockets(base)
    deep = "[" * 5000 + "]" * 5000
    deep_object = '{"type": "message.send", "content": "x", "metadata": ' + deep + "}"
    for _ in range(5):
        async with open_socket(ws_url(base, chat.id), raw) as ws:
            assert await open_sockets(base) == idle + 1
            for text in (deep, deep_object):
                await ws.send(text)
                frame = await recv(ws)
                assert frame["type"] == "error"
                assert frame["error"]["type"] == "malformed_request"
            await send_json(ws, {"type": "ping"})
            assert await recv(ws) == {"type": "pong"}
    assert await gauge_settles_at(base, idle) == idle
    assert fakes.openai.chat_requests() == []


@pytest.mark.parametrize("text", ["a\\u0000b", "a\\ud800b"], ids=["nul", "surrogate"])
async def test_text_the_database_cannot_hold_is_a_validation_error(env, text):
    """Anywhere in the frame, also in fields kept as JSON (here `stop`)."""
    base, chat, raw, fakes = env
    async with open_socket(ws_url(base, chat.id), raw) as ws:
        await ws.send('{"type": "message.send", "content": "hi", "stop": "' + text + '"}')
        frame = await recv(ws)
        assert frame["type"] == "error" and frame["error"]["type"] == "validation_error"
        await send_json(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}
    assert await Message.objects.filter(chat=chat).acount() == 0
    assert fakes.openai.chat_requests() == []


async def test_refused_sockets_are_not_left_in_the_gauge(env):
    base, chat, raw, _ = env
    idle = await open_sockets(base)
    for url, key in [
        (ws_url(base, chat.id), "lw_wrong"),
        (ws_url(base, "00000000-0000-4000-8000-000000000000"), raw),
    ]:
        async with open_socket(url, key) as ws:
            await close_code(ws)
    assert await gauge_settles_at(base, idle) == idle


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999"])
async def test_numbers_json_cannot_represent_are_refused(env, number):
    base, chat, raw, fakes = env
    async with open_socket(ws_url(base, chat.id), raw) as ws:
        await ws.send('{"type": "message.send", "content": "hi", "temperature": ' + number + "}")
        frame = await recv(ws)
        assert frame["type"] == "error" and frame["error"]["type"] == "malformed_request"
        assert frame["error"]["details"] == {"reason": "invalid_number"}
    assert await Message.objects.filter(chat=chat).acount() == 0
    assert fakes.openai.chat_requests() == []
