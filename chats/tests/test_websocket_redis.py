"""Chat WebSockets on the Redis channel layer, as real clients meet them: sockets idle
for longer than every timeout of the layer and its Redis client, and Redis itself going
away and coming back under running processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
import pytest
from django.conf import settings

from chats.models import Chat
from chats.tests.test_websocket_live import open_socket, recv, send_json, until_end, ws_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture
def env(live_server_url, make_tenant, llm_fakes, caplog):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: the Redis channel layer")
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, title="t", provider="openai")
    caplog.set_level(logging.WARNING, logger="chats.fanout")
    return live_server_url, chat, raw, llm_fakes


def layer_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "chats.fanout"]


async def test_an_idle_socket_outlives_every_layer_timeout_then_runs_a_turn(env, caplog):
    """channels-redis blocks 5 s per read; redis-py's default socket timeout is 5 s too."""
    base, chat, raw, fakes = env
    async with (
        open_socket(ws_url(base, chat.id), raw) as ws,
        open_socket(ws_url(base, chat.id), raw) as viewer,
    ):
        await asyncio.sleep(12)
        fakes.openai.enqueue(text="still here after the quiet", chunks=3)
        await send_json(ws, {"type": "message.send", "content": "hello?"})
        frames = await until_end(ws)
        assert frames[-1]["type"] == "message.completed"
        assert frames[-1]["message"]["content"] == "still here after the quiet"
        seen = await until_end(viewer)
        assert [f["type"] for f in seen] == [f["type"] for f in frames]
        assert all(f["origin"] == "other" for f in seen)
    assert layer_warnings(caplog) == []


async def test_a_socket_waits_for_a_slow_models_first_token(env, settings, caplog):
    base, chat, raw, fakes = env
    settings.PROVIDER_READ_TIMEOUT = 30.0
    fakes.openai.enqueue(text="worth the wait", delay=8)
    async with (
        open_socket(ws_url(base, chat.id), raw) as ws,
        open_socket(ws_url(base, chat.id), raw) as viewer,
    ):
        await send_json(ws, {"type": "message.send", "content": "think hard"})
        frames = await until_end(ws, timeout=30)
        assert frames[-1]["type"] == "message.completed"
        assert frames[-1]["message"]["content"] == "worth the wait"
        seen = await until_end(viewer, timeout=30)
        assert seen[-1]["type"] == "message.completed" and seen[-1]["origin"] == "other"
    assert layer_warnings(caplog) == []


def waiting_receives(redis_url: str) -> int:
    """Connections of our Redis database blocked in the channel layer's receive."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        db = client.connection_pool.connection_kwargs.get("db", 0)
        return sum(1 for c in client.client_list() if int(c["db"]) == db and c["cmd"] == "bzpopmin")
    finally:
        client.close()


async def test_closed_sockets_leave_no_receive_running(env):
    """Each socket's layer receive ends with it, however briefly it was open (a receive
    whose cancellation is lost would go on polling Redis, and hold the server open)."""
    base, chat, raw, _ = env
    for index in range(150):
        key = raw if index % 3 else "lw_wrong"
        async with open_socket(ws_url(base, chat.id), key) as ws:
            if key == raw:
                await send_json(ws, {"type": "ping"})
                assert await recv(ws) == {"type": "pong"}
            else:
                assert (await recv(ws))["type"] == "error"
    deadline = time.monotonic() + 15
    while (left := waiting_receives(settings.REDIS_URL)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert left == 0


# -- Redis going away and coming back ---------------------------------------------------


async def post_message(base: str, chat: Chat, raw: str, content: str) -> None:
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(
            f"{base}/api/v1/chats/{chat.id}/messages",
            json={"content": content},
            headers={"Authorization": f"Bearer {raw}"},
        )
    assert response.status_code == 200, response.text


async def sees_a_message_posted_through(viewer, base: str, chat: Chat, raw: str) -> bool:
    """Post messages through `base` until the viewer sees one (fan-out resumes once the
    processes notice Redis is back); False if it never does."""
    deadline = time.monotonic() + 30
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        content = f"attempt {attempt}"
        await post_message(base, chat, raw, content)
        with contextlib.suppress(TimeoutError):
            while True:
                frame = await recv(viewer, timeout=2)
                inputs = frame.get("input_messages") or [{}]
                if frame["type"] == "message.created" and inputs[0].get("content") == content:
                    assert frame["origin"] == "other"
                    assert (await until_end(viewer))[-1]["type"] == "message.completed"
                    return True
    return False


def test_sockets_keep_working_while_redis_is_down_and_fan_out_resumes(
    make_tenant, llm_fakes, app_process, throwaway_redis
):
    subtenant, raw, _ = make_tenant("acme")
    chat = Chat.objects.create(subtenant=subtenant, title="t", provider="openai")
    vendor = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": llm_fakes.openai.base_url}
    first = app_process(REDIS_URL=throwaway_redis.url, **vendor)
    second = app_process(REDIS_URL=throwaway_redis.url, **vendor)

    async def scenario() -> None:
        throwaway_redis.stop()
        llm_fakes.openai.enqueue(text="served without redis", chunks=3)
        async with open_socket(ws_url(first, chat.id), raw) as ws:
            await send_json(ws, {"type": "ping"})
            assert await recv(ws) == {"type": "pong"}
            await send_json(ws, {"type": "message.send", "content": "anyone?"})
            frames = await until_end(ws)
            assert frames[0]["type"] == "message.created"
            assert frames[-1]["type"] == "message.completed"
            assert frames[-1]["message"]["content"] == "served without redis"
            assert sum(f["type"] == "delta" for f in frames) >= 2

            throwaway_redis.start()
            # The socket opened during the outage joins its chat again: it sees a
            # message sent through the other process...
            assert await sees_a_message_posted_through(ws, second, chat, raw)
            # ...and a viewer on the other process sees what this socket sends.
            async with open_socket(ws_url(second, chat.id), raw) as viewer:
                await send_json(viewer, {"type": "ping"})
                assert await recv(viewer) == {"type": "pong"}
                llm_fakes.openai.enqueue(text="fan-out is back", chunks=2)
                await send_json(ws, {"type": "message.send", "content": "and now?"})
                assert (await until_end(ws))[-1]["type"] == "message.completed"
                seen = await until_end(viewer)
                assert seen[-1]["message"]["content"] == "fan-out is back"
                assert seen[-1]["origin"] == "other"

    asyncio.run(scenario())
