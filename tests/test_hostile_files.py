"""Hostile files (issue 12, "Files" and "Disk"): damaged files and bombs refused with nothing sent,
uploads capped, and exports and shown files kept under the data dir, bounded and swept."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client
from PIL import Image

import app
from chat import ChatError
from chat.attachments import Attachment, check_attachment
from tests.conftest import chat, free_port, launched_app, make_settings, notice_in, pdf_document, write_image
from tests.loopback_api import LoopbackMessagesAPI
from tests.test_page import site  # noqa: F401  (the page over a real store: `site` fixture)
from tests.upstream import TEST_KEY, text_reply
from ui.downloads import KEEP_SECONDS, SWEEP_EVERY_SECONDS, Downloads, safe_name, use_gradio_cache_under
from ui.server import CACHE_KEEP_SECONDS, CACHE_SWEEP_SECONDS, MB, ServerSettings, start


@pytest.fixture
def app_url(loopback_api: LoopbackMessagesAPI, tmp_path: Path) -> Iterator[str]:
    settings = make_settings(api_key=TEST_KEY, base_url=loopback_api.url, data_dir=tmp_path / "data")
    with launched_app(settings, ServerSettings(max_file_mb=1)) as url:
        yield url


def sent_through_the_page(app_url: str, *files: Path) -> str | None:
    """Send these files with a message through the real app; the failure notice it ends with."""
    return notice_in(chat(Client(app_url, verbose=False), "what is this?", files)[-1])


def photo(path: Path, size: tuple[int, int] = (400, 300)) -> Path:
    """A JPEG of noise (so most of the file is picture data, not header)."""
    Image.effect_noise(size, 60).convert("RGB").save(path, format="JPEG")
    return path


def png_bomb(path: Path, side: int) -> Path:
    """A valid one-bit PNG of side x side pixels: about 100 KB on disk for 30000 px."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes((side + 7) // 8)  # filter byte, then a row of black pixels
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return path


def pdf_inflating_to(size: int) -> bytes:
    """A one-page PDF whose page content is `size` spaces, deflated to a few hundred KB."""
    content = zlib.compress(b" " * size, 9)
    return pdf_document(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        ]
    )


# --- damaged files and bombs: refused through the real app, nothing sent ------------------------


def test_a_jpeg_cut_in_half_is_refused_and_not_sent(app_url, loopback_api, tmp_path):
    whole = photo(tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "photo.jpg").write_bytes(whole[: len(whole) // 2])
    notice = sent_through_the_page(app_url, tmp_path / "photo.jpg")
    assert notice == "photo.jpg is damaged (it ends early); nothing was sent."
    assert loopback_api.requests == []


def test_a_pdf_of_random_bytes_after_its_header_is_refused_and_not_sent(app_url, loopback_api, tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.7\n" + random.Random(12).randbytes(200_000))
    notice = sent_through_the_page(app_url, path)
    assert notice == "report.pdf is damaged (it ends early, or is not a PDF inside); nothing was sent."
    assert loopback_api.requests == []


def test_a_png_bomb_is_refused_with_the_pixel_limit_and_not_sent(app_url, loopback_api, tmp_path):
    bomb = png_bomb(tmp_path / "bomb.png", side=30_000)  # 900 million pixels in ~100 KB
    notice = sent_through_the_page(app_url, bomb)
    assert notice is not None and notice.startswith("bomb.png has too many pixels to read safely")
    assert "8000x8000 px" in notice and "nothing was sent" in notice
    assert loopback_api.requests == []


def test_a_pdf_that_inflates_past_the_limit_is_refused_and_not_sent(app_url, loopback_api, tmp_path):
    path = tmp_path / "bomb.pdf"
    path.write_bytes(pdf_inflating_to(300 * MB))  # pypdf stops each stream at 75 MB
    notice = sent_through_the_page(app_url, path)
    assert notice is not None and notice.startswith("bomb.pdf has more compressed content than")
    assert "nothing was sent" in notice
    assert loopback_api.requests == []


def test_an_upload_over_max_file_size_is_refused_before_it_is_kept(app_url, tmp_path):
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.7\n" + bytes(2 * MB))
    with big.open("rb") as file:
        refused = httpx.post(f"{app_url}gradio_api/upload", files={"files": ("big.pdf", file)}, timeout=30)
    assert refused.status_code == 413
    assert refused.text == f"File size exceeded maximum allowed size of {MB} bytes."
    # The page refuses before uploading, naming the file and the limit, from this setting.
    assert httpx.get(f"{app_url}config", timeout=10).json()["max_file_size"] == MB


# --- exports and shown files: under the data dir, one copy per content, swept after an hour ----


class Clock:
    """Wall-clock seconds that move only when told."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def json_path(exported: Any) -> Path:
    return next(Path(f["path"]) for f in exported.value if f["path"].endswith(".json"))


async def test_an_export_is_removed_after_its_hour(site, tmp_path):  # noqa: F811
    made = site(text_reply("One."), text_reply("Two."))
    clock = Clock(start=2_000_000_000.0)
    downloads = made.page.downloads = Downloads(tmp_path / "data" / "downloads", clock=clock)
    first, second = made.tab("ann"), made.tab("bob")
    await made.answer(first, "first")
    await made.answer(second, "second")
    await made.page.export([{"role": "user", "content": "first"}], first)
    (early,) = downloads.root.iterdir()
    assert sorted(path.name for path in early.iterdir()) == ["conversation.json", "conversation.md"]
    clock.now += KEEP_SECONDS - 1
    await made.page.export([{"role": "user", "content": "second"}], second)
    assert early.exists()  # not yet an hour old
    clock.now += SWEEP_EVERY_SECONDS + 1  # the next sweep
    await made.page.export([{"role": "user", "content": "second"}], second)
    (late,) = downloads.root.iterdir()  # the first one's hour is up; the second was just handed out again
    assert late != early


async def test_500_exports_of_a_conversation_with_an_image_stay_under_the_bound_of_one(site, tmp_path):  # noqa: F811
    made = site(text_reply("A square."))
    tab = made.tab()
    picture = photo(tmp_path / "noise.jpg", size=(300, 300))
    shown = [{"role": "user", "content": "look"}, {"role": "assistant", "content": "A square."}]
    [_ async for _ in made.page.respond({"text": "look", "files": [str(picture)]}, [], tab)]
    await made.page.export(shown, tab)
    one_export = made.page.downloads.size()
    assert one_export > 2 * picture.stat().st_size  # the image is in it (in the request and the attachments)
    for _ in range(499):
        await made.page.export(shown, tab)
    assert made.page.downloads.size() == one_export
    assert len(list(made.page.downloads.root.iterdir())) == 1


async def test_a_stored_chat_redrawn_many_times_copies_its_file_once(site, tmp_path):  # noqa: F811
    made = site(text_reply("Red."))
    tab = made.tab()
    [
        _
        async for _ in made.page.respond(
            {"text": "colour?", "files": [str(write_image(tmp_path / "red.png"))]}, [], tab
        )
    ]
    library = await made.page.library()
    conversation = await library.conversation(tab.owner, tab.conversation_id)
    shown = [made.page.screen(conversation.exchanges, conversation) for _ in range(50)]
    assert all(screen[0]["content"][0] == shown[0][0]["content"][0] for screen in shown)
    (folder,) = made.page.downloads.root.iterdir()
    assert [path.name for path in folder.iterdir()] == ["red.png"]


@pytest.mark.parametrize(
    "name", ["../../escaped.png", "..", "/etc/passwd", "nul\x00byte.png", "line\nbreak\r\x1b[31m.png"]
)
async def test_a_file_named_to_escape_neither_escapes_nor_crashes(site, tmp_path, name):  # noqa: F811
    made = site(text_reply("Seen."))
    tab = made.tab()
    image = write_image(tmp_path / "red.png")
    [
        _
        async for _ in made.page.respond(
            {"text": "hi", "files": [{"path": str(image), "orig_name": name}]}, [], tab
        )
    ]
    library = await made.page.library()
    conversation = await library.conversation(tab.owner, tab.conversation_id)
    (shown_file, _) = made.page.screen(conversation.exchanges, conversation)[0]["content"]
    path = Path(shown_file["path"])
    root = made.page.downloads.root.resolve()
    assert path.resolve().parent.parent == root and path.read_bytes() == image.read_bytes()
    assert not any(c in path.name for c in "/\x00\n\r\x1b") and path.name not in {".", ".."}
    exported = json.loads(
        json_path(await made.page.export([{"role": "user", "content": "hi"}], tab)).read_text()
    )
    assert [ref["name"] for ref in exported["exchanges"][0]["prompt"]["files"]] == [name]  # kept as data
    assert not (tmp_path / "escaped.png").exists() and not (tmp_path / "data" / "escaped.png").exists()


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("../../escaped.png", "escaped.png"),
        ("..", "file"),
        ("a\\..\\b.pdf", "b.pdf"),
        ("nul\x00byte.png", "nulbyte.png"),
        ("\u202egnp.exe", "gnp.exe"),  # a right-to-left override, hiding the real suffix
        ("x" * 300 + ".png", "x" * 196 + ".png"),
    ],
)
def test_a_file_name_is_cleaned_to_one_safe_name(name, cleaned):
    assert safe_name(name) == cleaned


def test_a_pdf_whose_pages_together_inflate_past_the_limit_is_refused(tmp_path):
    content = zlib.compress(b" " * (70 * MB), 9)  # each page under pypdf's 75 MB, three over 200 MB
    pdf = pdf_document(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >>",
            *[b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R >>"] * 3,
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        ]
    )
    with pytest.raises(ChatError, match=r"pages.pdf inflates past 200\.0 MB .*; nothing was sent"):
        check_attachment(Attachment("pages.pdf", "application/pdf", pdf))


# --- the server's own limits ---------------------------------------------------------------------


def test_the_upload_limit_is_25_mb_unless_app_max_file_mb_says_otherwise():
    assert ServerSettings.from_env({}).max_file_mb == 25
    assert ServerSettings.from_env({"APP_MAX_FILE_MB": "40"}).max_file_mb == 40
    with pytest.raises(ChatError, match="APP_MAX_FILE_MB must be a whole number above 0"):
        ServerSettings.from_env({"APP_MAX_FILE_MB": "0"})


def test_the_served_app_caps_uploads_and_deletes_gradios_cached_files_after_an_hour(tmp_path):
    settings = make_settings(api_key=TEST_KEY, base_url="http://127.0.0.1:9", data_dir=tmp_path / "data")
    demo = app.build_demo(settings, ServerSettings())
    start(demo, ServerSettings(), server_port=free_port(), quiet=True)
    try:
        assert demo.max_file_size == 25 * MB
        assert demo.delete_cache == (CACHE_SWEEP_SECONDS, CACHE_KEEP_SECONDS) and CACHE_KEEP_SECONDS == 3600
        assert str((tmp_path / "data" / "downloads").resolve()) in demo.allowed_paths
    finally:
        app.stop(demo)


def test_gradios_cache_goes_under_the_data_dir_and_a_crashed_runs_leftovers_are_swept(tmp_path):
    cache = tmp_path / "data" / "gradio"
    (cache / "old").mkdir(parents=True)
    (cache / "new").mkdir()
    an_hour_ago = time.time() - KEEP_SECONDS - 1
    os.utime(cache / "old", (an_hour_ago, an_hour_ago))
    environ: dict[str, str] = {}
    assert use_gradio_cache_under(tmp_path / "data", environ) == cache.resolve()
    assert environ == {"GRADIO_TEMP_DIR": str(cache.resolve())}
    assert sorted(path.name for path in cache.iterdir()) == ["new"]


def test_an_operators_gradio_temp_dir_wins_and_is_left_alone(tmp_path):
    theirs = tmp_path / "their-cache"
    (theirs / "old").mkdir(parents=True)
    os.utime(theirs / "old", (0, 0))
    environ = {"GRADIO_TEMP_DIR": str(theirs)}
    assert use_gradio_cache_under(tmp_path / "data", environ) == theirs
    assert (theirs / "old").exists()


@pytest.fixture
def data_dir_elsewhere() -> Iterator[Path]:
    """A data dir outside both the working directory and the temp dir (as /data is on a Space)."""
    folder = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="chat-data-"))
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


def test_an_export_is_served_from_a_data_dir_outside_the_working_and_temp_dirs(
    data_dir_elsewhere, loopback_api, tmp_path
):
    settings = make_settings(api_key=TEST_KEY, base_url=loopback_api.url, data_dir=data_dir_elsewhere)
    with launched_app(settings) as url:
        client = Client(url, verbose=False)
        chat(client, "look", [write_image(tmp_path / "red.png")])
        update = client.predict(api_name="/export")
    (json_file,) = [Path(path) for path in update["value"] if path.endswith(".json")]
    assert json.loads(json_file.read_text())["exchanges"][0]["prompt"]["text"] == "look"
    assert len(list((data_dir_elsewhere / "downloads").iterdir())) == 1  # the export, under the data dir
