"""MCP tool results with images, embedded documents, text resources and resource links
reach the model in its vendor's format, and the client sees them as `parts`."""

import base64

import pytest

from conftest import async_client_for
from providers.core.content import ContentLimits, DocumentPart, ImagePart, TextPart
from tools.mcp.result_content import TRUNCATED, result_content
from tools.mcp.testing import TINY_PDF, TINY_PNG, McpTestServer

PNG_B64 = base64.b64encode(TINY_PNG).decode()
PDF_B64 = base64.b64encode(TINY_PDF).decode()
LIMITS = ContentLimits()

# What media() returns, as the model reads it.
MEDIA_TEXT = "\n".join(
    [
        "Q3 sales: chart and report.",
        "[resource file:///reports/q3.pdf (application/pdf), attached]",
        "[resource file:///notes/q3.txt]",
        "Up 12% on Q2.",
        "[resource link: https://data.example.com/q3.csv (name: q3.csv; type: text/csv), "
        "not fetched]",
    ]
)


def convert(blocks, *, limits=LIMITS, max_text_chars=16_000, structured=None):
    return result_content(
        blocks, structured=structured, limits=limits, max_text_chars=max_text_chars
    )


def image(data=PNG_B64, mime="image/png"):
    return {"type": "image", "data": data, "mimeType": mime}


def blob(uri, mime, data):
    return {"type": "resource", "resource": {"uri": uri, "mimeType": mime, "blob": data}}


# The conversion, block by block.


def test_text_blocks_stay_text_only():
    result = convert([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    assert result.text == "a\nb" and result.parts == ()


def test_a_png_image_becomes_an_image_part_after_the_text():
    result = convert([{"type": "text", "text": "the chart"}, image()])
    assert result.text == "the chart"
    assert result.parts == (TextPart("the chart"), ImagePart("image/png", TINY_PNG))


def test_an_image_of_a_type_models_do_not_take_is_a_note():
    result = convert([image(base64.b64encode(b"<svg/>").decode(), "image/svg+xml")])
    assert result.text == "[image of type image/svg+xml omitted]" and result.parts == ()


def test_an_image_block_carrying_a_pdf_is_a_note():
    result = convert([image(PDF_B64, "application/pdf")])
    assert result.text == "[image of type application/pdf omitted]" and result.parts == ()


def test_an_image_whose_bytes_are_not_its_type_is_a_note():
    gif = base64.b64encode(b"GIF89a\x01\x00\x01\x00").decode()
    result = convert([image(gif, "image/png")])
    assert result.text == "[image of type image/png omitted: its bytes are not image/png]"
    assert result.parts == ()


def test_an_image_that_is_not_base64_is_a_note():
    result = convert([image("not base64 at all!")])
    assert result.text == "[image of type image/png omitted: not valid base64]"
    assert result.parts == ()


def test_wrapped_base64_still_decodes():
    wrapped = "\n".join(PNG_B64[i : i + 20] for i in range(0, len(PNG_B64), 20))
    assert convert([image(wrapped)]).parts[1] == ImagePart("image/png", TINY_PNG)


def test_a_text_resource_is_its_text_labelled_with_its_uri():
    block = {"type": "resource", "resource": {"uri": "file:///a.md", "text": "# Title"}}
    result = convert([block])
    assert result.text == "[resource file:///a.md]\n# Title" and result.parts == ()


def test_a_pdf_resource_blob_becomes_a_document_part_named_by_its_uri():
    result = convert([blob("file:///reports/q3.pdf", "application/pdf", PDF_B64)])
    assert result.text == "[resource file:///reports/q3.pdf (application/pdf), attached]"
    assert result.parts[1:] == (DocumentPart("application/pdf", TINY_PDF, "q3.pdf"),)


def test_an_image_resource_blob_becomes_an_image_part():
    result = convert([blob("file:///c.png", "image/png", PNG_B64)])
    assert result.parts[1:] == (ImagePart("image/png", TINY_PNG),)


def test_a_blob_of_another_type_is_a_note():
    zipped = base64.b64encode(b"PK\x03\x04").decode()
    result = convert([blob("file:///x.zip", "application/zip", zipped)])
    assert result.text == "[resource file:///x.zip of type application/zip omitted]"
    assert result.parts == ()


def test_a_resource_link_is_named_never_fetched():
    link = {
        "type": "resource_link",
        "uri": "https://example.com/big.bin",
        "name": "big",
        "mimeType": "application/octet-stream",
    }
    result = convert([link])
    assert result.text == (
        "[resource link: https://example.com/big.bin "
        "(name: big; type: application/octet-stream), not fetched]"
    )
    assert result.parts == ()


def test_audio_is_a_note():
    result = convert([{"type": "audio", "data": "AAAA", "mimeType": "audio/wav"}])
    assert result.text == "[audio of type audio/wav omitted]" and result.parts == ()


def test_an_image_over_the_part_limit_is_a_note():
    limits = ContentLimits(part_bytes=len(TINY_PNG) - 1)
    result = convert([image()], limits=limits)
    assert result.text == (
        f"[image of type image/png omitted: larger than {len(TINY_PNG) - 1} bytes]"
    )
    assert result.parts == ()


def test_binaries_over_the_message_limit_keep_the_first_and_note_the_rest():
    limits = ContentLimits(message_bytes=len(TINY_PNG) + len(TINY_PDF) - 1)
    result = convert([image(), blob("file:///r.pdf", "application/pdf", PDF_B64)], limits=limits)
    assert [type(p) for p in result.parts] == [TextPart, ImagePart]
    assert result.text == (
        "[resource file:///r.pdf of type application/pdf omitted: the result's images and "
        f"documents would exceed {limits.message_bytes} bytes]"
    )


def test_binaries_over_the_parts_limit_are_notes():
    result = convert([image(), image(), image()], limits=ContentLimits(parts=3))
    assert len(result.parts) == 3
    note = "[image of type image/png omitted: at most 2 images and documents per result]"
    assert result.text == note


def test_long_text_is_cut_and_keeps_the_images():
    result = convert([{"type": "text", "text": "x" * 100}, image()], max_text_chars=40)
    assert len(result.text) == 40 and result.text.endswith(TRUNCATED)
    assert result.parts == (TextPart(result.text), ImagePart("image/png", TINY_PNG))


def test_without_text_the_structured_content_is_the_text():
    result = convert([image()], structured={"width": 2})
    assert result.text == '{"width": 2}'
    assert result.parts[0] == TextPart('{"width": 2}')
    assert convert([], structured=None).text == "[]"


# Through the app: a real MCP server, the direct API, fake vendors.


@pytest.fixture(scope="module")
def media_server():
    with McpTestServer("streamable_http", name="files") as server:
        yield server


@pytest.fixture
async def client(make_tenant, media_server, settings):
    from asgiref.sync import sync_to_async

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    _, raw, _ = await sync_to_async(make_tenant)("acme")
    client = async_client_for(raw)
    registered = await client.post(
        "/api/v1/mcp/servers",
        {"name": "files", "url": media_server.url, "protocol": "http"},
        content_type="application/json",
    )
    assert registered.status_code == 201, registered.content
    assert "files__media" in registered.json()["tools"]
    return client


async def complete(client, provider):
    response = await client.post(
        "/api/v1/llm/complete",
        {"provider": provider, "messages": [{"role": "user", "content": "Summarize Q3"}]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


EXPECTED_PARTS = [
    {"type": "text", "text": MEDIA_TEXT},
    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
    {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{PDF_B64}", "filename": "q3.pdf"},
    },
]


@pytest.mark.django_db(transaction=True)
async def test_anthropic_gets_the_image_and_pdf_inside_the_tool_result(client, llm_fakes):
    llm_fakes.anthropic.enqueue(tool_calls=[{"name": "files__media", "arguments": {}}])
    llm_fakes.anthropic.enqueue(text="Sales rose 12%.")
    body = await complete(client, "anthropic")

    assert body["message"]["content"] == "Sales rose 12%."
    result = body["tool_results"][0]
    assert result["content"] == MEDIA_TEXT and result["is_error"] is False
    assert result["parts"] == EXPECTED_PARTS

    sent = llm_fakes.anthropic.chat_requests()[-1].body["messages"]
    tool_use = next(b for b in sent[-2]["content"] if b["type"] == "tool_use")
    tool_result = sent[-1]["content"][0]
    assert tool_result["type"] == "tool_result"
    assert tool_result["tool_use_id"] == tool_use["id"] == result["tool_call_id"]
    text, picture, document = tool_result["content"]
    assert text == {"type": "text", "text": MEDIA_TEXT}
    assert picture == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
    }
    assert document["type"] == "document"
    assert document["source"] == {
        "type": "base64",
        "media_type": "application/pdf",
        "data": PDF_B64,
    }


@pytest.mark.django_db(transaction=True)
async def test_openai_gets_the_text_as_the_tool_message_and_the_binaries_after_it(
    client, llm_fakes
):
    llm_fakes.openai.enqueue(tool_calls=[{"name": "files__media", "arguments": {}}])
    llm_fakes.openai.enqueue(text="Sales rose 12%.")
    body = await complete(client, "openai")

    result = body["tool_results"][0]
    assert result["parts"] == EXPECTED_PARTS

    sent = llm_fakes.openai.chat_requests()[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    call_id = sent[1]["tool_calls"][0]["id"]
    assert sent[2] == {"role": "tool", "tool_call_id": call_id, "content": MEDIA_TEXT}
    label, picture, document = sent[3]["content"]
    assert label["type"] == "text"
    assert "files__media" in label["text"] and call_id in label["text"]
    assert "output" in label["text"].lower()
    assert picture == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
    }
    assert document["type"] == "file"
    assert document["file"]["file_data"] == f"data:application/pdf;base64,{PDF_B64}"


@pytest.mark.django_db(transaction=True)
async def test_a_cut_result_text_keeps_its_images(client, llm_fakes, settings):
    settings.TOOL_MAX_RESULT_CHARS = 40
    llm_fakes.openai.enqueue(tool_calls=[{"name": "files__media", "arguments": {}}])
    llm_fakes.openai.enqueue(text="ok")
    body = await complete(client, "openai")

    result = body["tool_results"][0]
    assert len(result["content"]) == 40 and result["content"].endswith(TRUNCATED)
    assert [p["type"] for p in result["parts"]] == ["text", "image_url", "file"]
    sent = llm_fakes.openai.chat_requests()[-1].body["messages"]
    assert sent[2]["content"] == result["content"]
    assert [p["type"] for p in sent[3]["content"]] == ["text", "image_url", "file"]


@pytest.mark.django_db(transaction=True)
async def test_text_only_tool_results_carry_no_parts(client, llm_fakes):
    llm_fakes.openai.enqueue(tool_calls=[{"name": "files__echo", "arguments": {"text": "hi"}}])
    llm_fakes.openai.enqueue(text="ok")
    body = await complete(client, "openai")

    assert body["tool_results"][0]["content"] == "hi"
    assert "parts" not in body["tool_results"][0]
    sent = llm_fakes.openai.chat_requests()[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
