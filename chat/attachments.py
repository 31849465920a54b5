"""Files sent with a message: checked against Claude's limits, then turned into content blocks.

The limits come from Anthropic's documentation:
- Images (https://docs.claude.com/en/docs/build-with-claude/vision): JPEG, PNG, GIF or WebP;
  at most 5 MB per image as sent (the API measures the base64 text), at most 8000x8000 px,
  at most 100 images per request.
- PDFs (https://docs.claude.com/en/docs/build-with-claude/pdf-support): a standard PDF
  (no password or encryption), at most 100 pages, and the whole request at most 32 MB.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from anthropic.types import MessageParam
from PIL import Image, UnidentifiedImageError
from pypdf import PageObject, PdfReader
from pypdf.errors import FileNotDecryptedError, LimitReachedError
from pypdf.generic import ArrayObject

from chat.errors import ChatError, refused

MB = 1024 * 1024
MAX_IMAGE_BASE64_BYTES = 5 * MB
MAX_IMAGE_SIDE_PX = 8000
MAX_IMAGES_PER_REQUEST = 100
MAX_PDF_PAGES = 100
MAX_REQUEST_BYTES = 32 * MB
MAX_HISTORY_MESSAGES = 400  # this app's default (Guards.max_history_messages)
# Page content a PDF may inflate to when checked: text pages take tens of KB each, so 100 pages
# stay far below; a compressed bomb does not.
MAX_PDF_DECODED_BYTES = 200 * MB
# pypdf logs a warning for every oddity of a visitor's file; the refusal already says what matters.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# What a file is, from its first bytes: the name can lie, the content cannot.
IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
PDF_SIGNATURE = b"%PDF-"
ACCEPTED = "PNG, JPEG, GIF or WebP images and PDF documents"
# For the file picker only: the content decides what a file is.
ACCEPTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf")
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


@dataclass(frozen=True)
class Attachment:
    """A checked file: its name, media type and bytes."""

    name: str
    media_type: str
    data: bytes

    @property
    def is_image(self) -> bool:
        """True for images, False for PDF documents."""
        return self.media_type.startswith("image/")


def file_path(file: str | Path | Mapping[str, Any]) -> str:
    """The path of a file as a UI hands it over: a path, or a dict with a 'path' key."""
    if isinstance(file, Mapping):
        return str(file.get("path") or "")
    return str(file)


def file_name(file: str | Path | Mapping[str, Any]) -> str:
    """The name a user knows a file by (its original name when the UI kept it)."""
    if isinstance(file, Mapping) and file.get("orig_name"):
        return str(file["orig_name"])
    return Path(file_path(file)).name


def load_attachment(file: str | Path | Mapping[str, Any]) -> Attachment:
    """Read a file and check it is an image or PDF that Claude accepts."""
    name = file_name(file)
    try:
        data = Path(file_path(file)).read_bytes()
    except OSError as error:
        raise refused(f"Could not read {name}: {error.strerror or 'unreadable file'}.") from error
    attachment = Attachment(name, sniff_media_type(data) or "", data)
    check_attachment(attachment)
    return attachment


def check_attachment(attachment: Attachment) -> None:
    """Check the content is the image or PDF it claims to be, within Claude's limits."""
    found = sniff_media_type(attachment.data)
    if found is None:
        raise refused(f"{attachment.name} is not a file Claude can read. Attach {ACCEPTED}.")
    if found != attachment.media_type:
        raise refused(f"{attachment.name} claims to be {attachment.media_type} but its content is {found}.")
    if attachment.is_image:
        _check_image(attachment)
    else:
        _check_pdf(attachment)


def sniff_media_type(data: bytes) -> str | None:
    """The media type of a file's content, if it is one Claude accepts."""
    for signature, media_type in IMAGE_SIGNATURES.items():
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(PDF_SIGNATURE):
        return "application/pdf"
    return None


def check_request(request: Mapping[str, Any], max_messages: int = MAX_HISTORY_MESSAGES) -> None:
    """Check the limits that apply to a whole request: its messages, its images, its size as sent."""
    messages = request.get("messages", [])
    if len(messages) > max_messages:
        raise refused(
            f"This conversation is too long: with this message it has {len(messages):,} messages, and "
            f"this app sends at most {max_messages:,} ({max_messages // 2:,} turns). "
            "Start a new chat to go on: nothing was sent.",
            messages=len(messages),
            limit=max_messages,
        )
    blocks = [block for message in messages for block in _blocks(message)]
    images = sum(1 for block in blocks if block.get("type") == "image")
    if images > MAX_IMAGES_PER_REQUEST:
        raise refused(
            f"This conversation carries {images} images; Claude accepts up to "
            f"{MAX_IMAGES_PER_REQUEST} per request. Start a new chat to send more: nothing was sent."
        )
    size = request_size(request)
    if size > MAX_REQUEST_BYTES:
        raise refused(
            f"This conversation is too large to send: with this message the request is {_mb(size)}; "
            f"Claude accepts requests up to {_mb(MAX_REQUEST_BYTES)}. Start a new chat or attach smaller "
            "files: nothing was sent.",
            size=size,
            limit=MAX_REQUEST_BYTES,
        )


def request_size(request: Mapping[str, Any]) -> int:
    """The request's size as the SDK sends it: compact UTF-8 JSON, the streaming flag included.

    Files' base64 data is counted by its length (it needs no escaping), not encoded again: this
    runs before every message, and the SDK encodes the whole body once more when it sends it.
    """
    data = 0
    messages = []
    for message in request.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            blocks = []
            for block in content:
                source = block.get("source") if isinstance(block, Mapping) else None
                if isinstance(source, Mapping) and isinstance(source.get("data"), str):
                    data += len(source["data"])
                    block = {**block, "source": {**source, "data": ""}}
                blocks.append(block)
            message = {**message, "content": blocks}
        messages.append(message)
    body = {**request, "messages": messages, "stream": True}
    return data + len(
        json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    )


def _check_image(attachment: Attachment) -> None:
    encoded = len(_b64(attachment.data))
    if encoded > MAX_IMAGE_BASE64_BYTES:
        raise refused(
            f"{attachment.name} is too large: {_mb(encoded)} as sent; Claude accepts images up to "
            f"{_mb(MAX_IMAGE_BASE64_BYTES)} (about 3.7 MB on disk). Resize it and try again."
        )
    kind = attachment.media_type.removeprefix("image/").upper()  # JPEG, PNG, GIF, WEBP
    try:
        with Image.open(BytesIO(attachment.data)) as image:  # reads the header only
            width, height = image.size
            image.verify()  # the file's own checksums (PNG), without decoding
        if max(width, height) > MAX_IMAGE_SIDE_PX:
            raise refused(
                f"{attachment.name} is {width}x{height} px; Claude accepts images up to "
                f"{MAX_IMAGE_SIDE_PX}x{MAX_IMAGE_SIDE_PX} px. Resize it and try again."
            )
        # Decode every pixel (of the first frame, the one Claude reads): a file cut short or
        # garbled inside passes the header and checksums. Pillow's MAX_IMAGE_PIXELS still holds.
        with Image.open(BytesIO(attachment.data)) as image:
            image.load()
    except Image.DecompressionBombError as error:  # more pixels than Pillow will decode safely
        raise refused(
            f"{attachment.name} has too many pixels to read safely; nothing was sent. Claude accepts "
            f"images up to {MAX_IMAGE_SIDE_PX}x{MAX_IMAGE_SIDE_PX} px: resize it and try again."
        ) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise refused(
            f"{attachment.name} is damaged ({_image_damage(error, kind)}); nothing was sent."
        ) from error


def _image_damage(error: BaseException, kind: str) -> str:
    """What is wrong with an image Pillow could not decode, in a few words."""
    if isinstance(error, EOFError) or "truncated" in str(error).lower():
        return "it ends early"
    if isinstance(error, UnidentifiedImageError):
        return f"its {kind} header cannot be read"
    return f"its {kind} data cannot be decoded"


def _check_pdf(attachment: Attachment) -> None:
    encoded = len(_b64(attachment.data))
    if encoded > MAX_REQUEST_BYTES:
        raise refused(
            f"{attachment.name} is too large: {_mb(encoded)} as sent; Claude accepts requests up to "
            f"{_mb(MAX_REQUEST_BYTES)}. Split the PDF and try again."
        )
    pages = _read_pdf(attachment)
    if pages > MAX_PDF_PAGES:
        raise refused(
            f"{attachment.name} has {pages} pages; Claude reads up to {MAX_PDF_PAGES} pages per request. "
            "Split the PDF and try again."
        )


def pdf_page_count(data: bytes) -> int:
    """The pages a PDF's page tree lists, read without decoding their content; 0 when unreadable.

    Cheap enough for every request (the budget's worst case counts each PDF it carries again);
    the full check, which decodes every page, ran when the file was attached or loaded.
    """
    try:
        return len(PdfReader(BytesIO(data), strict=False).pages)
    except Exception:  # a file that broke pypdf was refused by the full check already
        return 0


def _read_pdf(attachment: Attachment) -> int:
    """Parse the whole PDF and decode every page's content; return its page count.

    Refuses (with nothing sent) a PDF that is encrypted, damaged, or whose pages inflate past
    MAX_PDF_DECODED_BYTES. pypdf's own limits bound each stream and the page tree.
    """
    name = attachment.name
    try:
        reader = PdfReader(BytesIO(attachment.data), strict=False)
        if "/Encrypt" in reader.trailer:
            raise refused(f"{name} is encrypted or password-protected; Claude needs a plain PDF.")
        pages = len(reader.pages)
        if pages > MAX_PDF_PAGES:
            return pages  # the caller says how many are too many; no need to decode them
        decoded = 0
        for page in reader.pages:
            for stream in _content_streams(page):
                decoded += len(stream.get_data())
                if decoded > MAX_PDF_DECODED_BYTES:
                    raise refused(
                        f"{name} inflates past {_mb(MAX_PDF_DECODED_BYTES)} once decompressed, more than "
                        "can be read safely; nothing was sent. Save it again as a plain PDF and retry."
                    )
    except ChatError:
        raise
    except FileNotDecryptedError as error:
        raise refused(f"{name} is encrypted or password-protected; Claude needs a plain PDF.") from error
    except LimitReachedError as error:  # one stream or the page tree past pypdf's own bounds
        raise refused(
            f"{name} has more compressed content than can be read safely; nothing was sent. "
            "Save it again as a plain PDF and retry."
        ) from error
    except Exception as error:  # pypdf raises many kinds (PdfReadError, KeyError, ...) on broken files
        raise refused(f"{name} is damaged ({_pdf_damage(attachment.data)}); nothing was sent.") from error
    if pages == 0:
        raise refused(f"{name} has no pages; nothing was sent.")
    return pages


def _content_streams(page: PageObject) -> list[Any]:
    """The content streams that draw a page (one, several, or none)."""
    contents = page.get("/Contents")
    if contents is None:
        return []
    contents = contents.get_object()
    if isinstance(contents, ArrayObject):
        return [item.get_object() for item in contents]
    return [contents]


def _pdf_damage(data: bytes) -> str:
    """What is wrong with a PDF pypdf could not read, in a few words."""
    if b"%%EOF" not in data[-1024:]:  # every whole PDF ends with this marker
        return "it ends early, or is not a PDF inside"
    return "it could not be read as a PDF"


def _blocks(message: MessageParam | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = message.get("content")
    return [block for block in content if isinstance(block, Mapping)] if isinstance(content, list) else []


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"
