"""Files checked against Claude's documented limits, kept by hash and sent as content blocks."""

from __future__ import annotations

import base64

import pytest
from PIL import Image
from pypdf import PdfWriter

from chat import ChatError, ErrorKind, Status
from chat.attachments import MB, check_request, load_attachment
from tests.conftest import Chat, write_image, write_pdf


async def sent_blocks(*files) -> list[dict]:
    """The content of the user message that carried these files (and the text "look")."""
    chat = Chat()
    await chat.send("look", files)
    return chat.requests[-1]["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("a.png", "image/png"), ("a.jpg", "image/jpeg"), ("a.gif", "image/gif"), ("a.webp", "image/webp")],
)
async def test_each_accepted_image_type_is_sent_as_a_base64_image_block(tmp_path, name, media_type):
    path = write_image(tmp_path / name)
    block, text = await sent_blocks(path)
    assert text == {"type": "text", "text": "look"}
    assert block["type"] == "image"
    assert block["source"]["media_type"] == media_type
    assert base64.b64decode(block["source"]["data"]) == path.read_bytes()


async def test_a_pdf_is_sent_as_a_document_block_titled_with_its_name(tmp_path):
    path = write_pdf(tmp_path / "report.pdf", pages=2)
    block, _ = await sent_blocks(path)
    assert block["type"] == "document" and block["title"] == "report.pdf"
    assert block["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(block["source"]["data"]) == path.read_bytes()


def test_the_type_comes_from_the_content_not_the_name(tmp_path):
    path = write_image(tmp_path / "really-a-png.pdf", image_format="PNG")
    assert load_attachment(path).media_type == "image/png"


def test_a_text_file_named_like_an_image_is_refused_with_the_accepted_types(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some notes")
    with pytest.raises(ChatError, match=r"notes.png is not a file Claude can read\. Attach PNG, JPEG"):
        load_attachment(path)


def test_an_image_over_5_mb_as_sent_is_refused(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(4 * MB))  # 5.3 MB once base64-encoded
    with pytest.raises(ChatError, match=r"huge.png is too large: 5\.3 MB .* up to 5\.0 MB"):
        load_attachment(path)


def test_an_image_wider_than_8000_px_is_refused(tmp_path):
    path = write_image(tmp_path / "banner.png", size=(8001, 2))
    with pytest.raises(ChatError, match=r"banner.png is 8001x2 px; .* up to 8000x8000 px"):
        load_attachment(path)


def test_a_damaged_image_is_refused(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(write_image(tmp_path / "whole.png").read_bytes()[:30])
    with pytest.raises(
        ChatError, match=r"broken.png is damaged \(its PNG header cannot be read\); nothing was sent\."
    ):
        load_attachment(path)


def test_a_pdf_over_100_pages_is_refused(tmp_path):
    path = write_pdf(tmp_path / "book.pdf", pages=101)
    with pytest.raises(ChatError, match=r"book.pdf has 101 pages; Claude reads up to 100"):
        load_attachment(path)


def test_a_100_page_pdf_is_accepted(tmp_path):
    assert load_attachment(write_pdf(tmp_path / "book.pdf", pages=100)).media_type == "application/pdf"


def test_an_encrypted_pdf_is_refused(tmp_path):
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    writer.encrypt("secret", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    writer.write(path)
    with pytest.raises(ChatError, match=r"locked.pdf is encrypted"):
        load_attachment(path)


def test_a_missing_file_is_refused_as_unreadable(tmp_path):
    with pytest.raises(ChatError, match=r"Could not read gone.png"):
        load_attachment(tmp_path / "gone.png")


def test_the_original_name_is_used_in_messages_when_the_ui_kept_it(tmp_path):
    path = tmp_path / "tmp123.txt"
    path.write_text("text")
    with pytest.raises(ChatError, match=r"holiday.png is not a file"):
        load_attachment({"path": str(path), "orig_name": "holiday.png"})


async def test_the_original_name_titles_the_document_sent(tmp_path):
    path = write_pdf(tmp_path / "upload-8f3a.pdf")
    block, _ = await sent_blocks({"path": str(path), "orig_name": "q3 report.pdf"})
    assert block["title"] == "q3 report.pdf"


async def test_a_refused_file_is_recorded_as_a_failed_exchange_and_nothing_is_sent(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some notes")
    chat = Chat()
    with pytest.raises(ChatError) as raised:
        chat.stream("look", [path])
    assert raised.value.kind is ErrorKind.REFUSED and "notes.png is not a file" in raised.value.message
    [exchange] = chat.conversation.exchanges
    assert exchange.status is Status.FAILED and exchange.error is raised.value
    assert chat.requests == []


def test_more_than_100_images_in_one_request_are_refused():
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
    request = {"messages": [{"role": "user", "content": [image] * 101}]}
    with pytest.raises(ChatError, match=r"101 images; Claude accepts up to 100"):
        check_request(request)


def test_a_request_whose_files_exceed_32_mb_is_refused():
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "A" * MB},
    }
    request = {"messages": [{"role": "user", "content": [pdf] * 33}]}
    with pytest.raises(ChatError, match=r"33\.0 MB; Claude accepts requests up to 32\.0 MB"):
        check_request(request)


async def test_an_image_bomb_is_refused_as_too_many_pixels_and_nothing_is_sent(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (14000, 14000)).save(bomb)  # a few KB on disk, 196 million pixels decoded
    chat = Chat()
    with pytest.raises(ChatError, match=r"bomb\.png has too many pixels to read safely") as raised:
        chat.stream("what is this?", [bomb])
    assert raised.value.kind is ErrorKind.REFUSED
    assert chat.requests == []
    assert chat.conversation.exchanges[0].status is Status.FAILED
