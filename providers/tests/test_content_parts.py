"""Images and documents in messages: checked on the way in, then sent to each vendor in
its own wire format (asserted on what the fake vendor servers received)."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from conftest import async_client_for
from providers.core.content import ContentError, ContentLimits, ImagePart, TextPart, parse_content
from providers.models import LlmCall
from providers.records import wait_idle
from providers.testing.media import PDF, PNG, data_uri
from tools.testing_tls import https_files

PNG_URI = data_uri(PNG, "image/png")
PDF_URI = data_uri(PDF, "application/pdf")
B64_PNG = base64.b64encode(PNG).decode()
B64_PDF = base64.b64encode(PDF).decode()
LIMITS = ContentLimits(part_bytes=1000, message_bytes=1500, parts=4)

IMAGE_AND_PDF = [
    {"type": "text", "text": "What is in these?"},
    {"type": "image_url", "image_url": {"url": PNG_URI, "detail": "low"}},
    {"type": "file", "file": {"file_data": PDF_URI, "filename": "scan.pdf"}},
]


def parse(value, role="user", limits=LIMITS):
    return parse_content(value, where="content", role=role, limits=limits)


# -- parsing ---------------------------------------------------------------------------


def test_parts_parse_into_text_and_parts():
    text, parts = parse(IMAGE_AND_PDF)
    assert text == "What is in these?"
    assert parts[0] == TextPart("What is in these?")
    assert parts[1] == ImagePart("image/png", PNG, detail="low")
    assert (parts[2].media_type, parts[2].data, parts[2].filename) == (
        "application/pdf",
        PDF,
        "scan.pdf",
    )


def test_text_only_parts_collapse_to_text():
    assert parse([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == ("ab", ())


def test_https_image_kept_as_url():
    _, parts = parse([{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}])
    assert parts == (ImagePart(url="https://example.com/a.png"),)


@pytest.mark.parametrize(
    ("value", "where", "needle"),
    [
        ([{"type": "input_audio", "input_audio": {}}], "content[0]", "input_audio"),
        ([{"type": "text"}], "content[0]", "text"),
        (
            [
                {"type": "text", "text": "x"},
                {"type": "image_url", "image_url": {"url": "http://x"}},
            ],
            "content[1]",
            "https",
        ),
        (
            [{"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN2Zy8+"}}],
            "content[0]",
            "image/svg+xml",
        ),
        (
            [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}],
            "content[0]",
            "base64",
        ),
        (
            [{"type": "image_url", "image_url": {"url": data_uri(PDF, "image/png")}}],
            "content[0]",
            "not image/png",
        ),
        (
            [{"type": "image_url", "image_url": {"url": PNG_URI, "detail": "max"}}],
            "content[0]",
            "detail",
        ),
        ([{"type": "file", "file": {"file_id": "file-123"}}], "content[0]", "file_data"),
        (
            [{"type": "file", "file": {"file_data": data_uri(PNG, "image/png")}}],
            "content[0]",
            "application/pdf",
        ),
        ([{"type": "text", "text": "x"}] * 5, "content", "At most 4"),
        (42, "content", "string or a list"),
    ],
)
def test_bad_parts_are_refused_by_name(value, where, needle):
    with pytest.raises(ContentError) as caught:
        parse(value)
    assert caught.value.status == 400 and caught.value.type == "invalid_content"
    assert caught.value.details == {"part": where}
    assert needle in caught.value.message


def test_oversize_part_and_message_are_413():
    big = data_uri(PNG + b"\0" * 1200, "image/png")
    with pytest.raises(ContentError) as caught:
        parse([{"type": "image_url", "image_url": {"url": big}}])
    assert (caught.value.status, caught.value.type) == (413, "content_too_large")
    medium = {"type": "image_url", "image_url": {"url": data_uri(PNG + b"\0" * 700, "image/png")}}
    with pytest.raises(ContentError) as caught:
        parse([medium, medium])
    assert caught.value.status == 413 and "exceed" in caught.value.message


def test_images_only_in_user_messages():
    with pytest.raises(ContentError, match="user messages"):
        parse(IMAGE_AND_PDF, role="assistant")


# -- through the direct API, to each vendor ---------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(make_tenant):
    _, raw, _ = make_tenant("vision")
    return async_client_for(raw)


async def complete(client, provider, content, **extra):
    body = {"provider": provider, "messages": [{"role": "user", "content": content}], **extra}
    return await client.post("/api/v1/llm/complete", body, content_type="application/json")


def user_message(body: dict) -> dict:
    return next(m for m in body["messages"] if m["role"] == "user")


@pytestmark_db
@pytest.mark.parametrize("provider", ["openai", "private"])
async def test_openai_wire_gets_the_parts_as_given(llm_fakes, client, provider):
    llm_fakes[provider].enqueue(text="A red pixel and an empty PDF.")
    response = await complete(client, provider, IMAGE_AND_PDF)
    assert response.status_code == 200, response.content
    assert user_message(llm_fakes[provider].chat_requests()[-1].body)["content"] == IMAGE_AND_PDF


@pytestmark_db
async def test_anthropic_wire_gets_image_and_document_blocks(llm_fakes, client):
    llm_fakes.anthropic.enqueue(text="Seen.")
    url_image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    response = await complete(client, "anthropic", [*IMAGE_AND_PDF, url_image])
    assert response.status_code == 200, response.content
    assert user_message(llm_fakes.anthropic.chat_requests()[-1].body)["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": B64_PNG}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": B64_PDF},
            "title": "scan.pdf",
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]


@pytestmark_db
async def test_ollama_wire_gets_images_as_base64(llm_fakes, client):
    llm_fakes.local.enqueue(text="Red.")
    response = await complete(client, "local", IMAGE_AND_PDF[:2])
    assert response.status_code == 200, response.content
    sent = user_message(llm_fakes.local.chat_requests()[-1].body)
    assert sent == {"role": "user", "content": "What is in these?", "images": [B64_PNG]}


@pytestmark_db
async def test_a_vendor_that_takes_no_documents_is_a_400_before_any_call(llm_fakes, client):
    response = await complete(client, "local", IMAGE_AND_PDF)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "unsupported_content"
    assert error["details"] == {"part": "messages[0].content[2]"} and "'local'" in error["message"]
    assert llm_fakes.local.chat_requests() == []


@pytestmark_db
async def test_fallbacks_that_cannot_take_the_parts_are_left_out(llm_fakes, client):
    llm_fakes.openai.enqueue(status=503, error_message="overloaded")
    llm_fakes.openai.enqueue(status=503, error_message="overloaded")
    llm_fakes.openai.enqueue(status=503, error_message="overloaded")
    llm_fakes.anthropic.enqueue(text="From the fallback.")
    response = await complete(
        client, "openai", IMAGE_AND_PDF, fallbacks=["local/llava", "anthropic/claude-sonnet-5"]
    )
    assert response.status_code == 200, response.content
    assert response.json()["provider"] == "anthropic"
    assert llm_fakes.local.chat_requests() == []


@pytestmark_db
async def test_ollama_image_urls_go_through_the_outbound_guard(llm_fakes, client):
    # The vendor needs bytes, so the gateway fetches: a private address is refused.
    private = {"type": "image_url", "image_url": {"url": "https://127.0.0.1:1/x.png"}}
    response = await complete(client, "local", [{"type": "text", "text": "?"}, private])
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "image_fetch_failed"
    assert error["details"] == {"part": "messages[0].content[1]"}
    assert llm_fakes.local.chat_requests() == []


@pytestmark_db
async def test_oversize_image_is_413_and_nothing_is_called(llm_fakes, client, settings):
    settings.CONTENT_PART_MAX_BYTES = 100
    big = data_uri(PNG + b"\0" * 200, "image/png")
    response = await complete(client, "openai", [{"type": "image_url", "image_url": {"url": big}}])
    assert response.status_code == 413, response.content
    assert response.json()["error"]["details"] == {"part": "messages[0].content[0]"}
    assert llm_fakes.openai.chat_requests() == []
    wait_idle()
    assert not await LlmCall.objects.aexists()


@pytestmark_db
async def test_message_endpoints_take_bodies_above_the_general_limit(llm_fakes, client, settings):
    # A 1.5 MB image: above MAX_REQUEST_BODY_BYTES (1 MB), within MAX_CONTENT_REQUEST_BYTES.
    settings.CONTENT_PART_MAX_BYTES = 2_000_000
    large = data_uri(PNG + b"\0" * 1_500_000, "image/png")
    llm_fakes.openai.enqueue(text="Large.")
    response = await complete(
        client, "openai", [{"type": "image_url", "image_url": {"url": large}}]
    )
    assert response.status_code == 200, response.content
    # Other endpoints keep the general limit.
    response = await client.post(
        "/api/v1/subtenants",
        json.dumps({"name": "x" * 1_100_000}),
        content_type="application/json",
    )
    assert response.status_code == 413


# -- the official openai SDK, unchanged --------------------------------------------------


@pytest.fixture
def sdk(make_tenant, live_server_url, llm_fakes):
    _, raw, _ = make_tenant("sdk-vision")
    return openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=raw, max_retries=0), llm_fakes


@pytestmark_db
@pytest.mark.parametrize("stream", [False, True])
def test_sdk_image_and_pdf_reach_openai_and_anthropic(sdk, stream):
    client, fakes = sdk
    for model in ("openai/gpt-4o-mini", "anthropic/claude-sonnet-5"):
        fakes[model.split("/")[0]].enqueue(text="I see a pixel.")
        answer = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": IMAGE_AND_PDF}], stream=stream
        )
        text = (
            "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
            if stream
            else answer.choices[0].message.content
        )
        assert text == "I see a pixel."
    assert user_message(fakes.openai.chat_requests()[-1].body)["content"] == IMAGE_AND_PDF
    blocks = user_message(fakes.anthropic.chat_requests()[-1].body)["content"]
    assert [b["type"] for b in blocks] == ["text", "image", "document"]
    assert blocks[1]["source"]["data"] == B64_PNG and blocks[2]["source"]["data"] == B64_PDF


@pytestmark_db
def test_sdk_gets_a_bad_part_as_its_own_bad_request_error(sdk):
    client, fakes = sdk
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
        )
    assert caught.value.param == "messages[0].content[0]"
    assert fakes.openai.chat_requests() == []


@pytestmark_db
async def test_ollama_gets_https_images_fetched_as_bytes(llm_fakes, client, settings, tmp_path):
    files = {"/cat.png": ("image/png", PNG), "/page": ("text/html", b"<html></html>")}
    with https_files(tmp_path, files) as (port, cert):
        settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
        settings.OUTBOUND_CA_FILE = str(cert)
        llm_fakes.local.enqueue(text="A cat.")
        cat = {"type": "image_url", "image_url": {"url": f"https://localhost:{port}/cat.png"}}
        response = await complete(client, "local", [{"type": "text", "text": "?"}, cat])
        assert response.status_code == 200, response.content
        sent = user_message(llm_fakes.local.chat_requests()[-1].body)
        assert sent["images"] == [B64_PNG]

        page = {"type": "image_url", "image_url": {"url": f"https://localhost:{port}/page"}}
        response = await complete(client, "local", [page])
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "image_fetch_failed"

        settings.CONTENT_PART_MAX_BYTES = 10
        response = await complete(client, "local", [cat])
        assert response.status_code == 400
        assert "larger than 10 bytes" in response.json()["error"]["message"]
    assert len(llm_fakes.local.chat_requests()) == 1
