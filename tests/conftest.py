"""Shared fakes and servers: settings, a conversation over the in-process upstream, the running app."""

from __future__ import annotations

import dataclasses
import itertools
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from PIL import Image

import app
from chat import ChatService, ClientSettings, Conversation, Guards, Reply, Settings, TurnOptions
from chat.files import FileStore
from chat.models import BUILT_IN_MODELS, ModelChoice
from chat.wire import Response, Script
from tests.loopback_api import LoopbackMessagesAPI
from tests.postgres import database_url, postgres_cluster, postgres_url, store  # noqa: F401  (store fixtures: both databases)
from tests.upstream import TEST_KEY, InProcess, echo_script, replies
from ui.render import notice_text
from ui.server import ServerSettings

CLUSTER_TESTS = Path(__file__).parent / "cluster"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave tests/cluster out unless it is named (`make test-cluster`): `make test` runs them once."""
    if collection_path != CLUSTER_TESTS:
        return None
    named = (Path(arg.split("::")[0]).resolve() for arg in config.args)
    return not any(path.is_relative_to(CLUSTER_TESTS) for path in named) or None


CLIENT_FIELDS = {f.name for f in dataclasses.fields(ClientSettings)}
TURN_FIELDS = {f.name for f in dataclasses.fields(TurnOptions)}
GUARD_FIELDS = {f.name for f in dataclasses.fields(Guards)}
STORAGE_FIELDS = {"data_dir", "database", "retention_days"}


def make_settings(**values: Any) -> Settings:
    """Settings from flat names (api_key=..., model=..., rate_limit_per_minute=...), each to its part."""
    unknown = set(values) - CLIENT_FIELDS - TURN_FIELDS - GUARD_FIELDS - STORAGE_FIELDS
    assert not unknown, f"not a service setting: {unknown}"
    part = lambda names: {k: v for k, v in values.items() if k in names}  # noqa: E731
    return Settings(
        client=ClientSettings(**part(CLIENT_FIELDS)),
        defaults=TurnOptions(**part(TURN_FIELDS)),
        guards=Guards(**part(GUARD_FIELDS)),
        data_dir=Path(values.get("data_dir") or tempfile.mkdtemp(prefix="chat-data-")),  # never ./data
        database=values.get("database"),
        retention_days=values.get("retention_days", 30),
    )


class Chat:
    """One conversation with a ChatService over a scripted upstream served in process."""

    def __init__(
        self,
        *responses: Response,
        settings: Settings | None = None,
        then: Script | None = None,
        models: Sequence[ModelChoice] = BUILT_IN_MODELS,
        **service: Any,
    ) -> None:
        self.settings = settings or make_settings(api_key=TEST_KEY, max_tokens=256)
        self.upstream = InProcess(replies(*responses, then=then or echo_script()))
        files = service.pop("files", None) or FileStore()
        self.service = ChatService(self.upstream.client, self.settings, models=models, files=files, **service)
        self.conversation: Conversation = self.service.conversation()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The request bodies the upstream received, oldest first."""
        return self.upstream.requests

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The history the next request would carry (under the default options)."""
        return self.service.history(self.conversation).messages

    def stream(self, text: object, files: Sequence[Any] = (), options: TurnOptions | None = None) -> Reply:
        """Start a reply (use it with `async with`)."""
        return self.service.stream_reply(self.conversation, text, files, options=options)

    async def send(
        self, text: object, files: Sequence[Any] = (), options: TurnOptions | None = None
    ) -> Reply:
        """Send a message and drain its reply; a failure raises ChatError."""
        async with self.stream(text, files, options) as reply:
            await reply.collect()
        return reply


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        api_key=TEST_KEY, model="claude-sonnet-5-5", max_tokens=256, data_dir=tmp_path / "data"
    )


@pytest.fixture
def loopback_api() -> Iterator[LoopbackMessagesAPI]:
    with LoopbackMessagesAPI(echo_script(delay=0.01)) as api:
        yield api


@contextmanager
def launched_app(
    settings: Settings, server: ServerSettings | None = None, port: int | None = None
) -> Iterator[str]:
    """The real app for these settings, served on this (or a free) local port; yields its URL.

    On exit its live answers are stopped and saved and its store closed, as a shutdown would.
    """
    server = server or ServerSettings()
    demo = app.build_demo(settings, server)
    app.start(demo, server, server_port=port or free_port(), quiet=True)
    try:
        yield demo.local_url
    finally:
        app.stop(demo)


def assert_valid_history(messages: Sequence[dict[str, Any]]) -> None:
    """The rules the Messages API sets: starts with the user, roles alternate, no empty content,
    every block typed and no text block blank, and each assistant tool_use answered first thing in
    the next user message by a tool_result for it (tool results nowhere else)."""
    assert messages and messages[0]["role"] == "user"
    roles = [message["role"] for message in messages]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    open_calls: list[str] = []
    for message in messages:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        assert blocks and all(isinstance(b, dict) and b.get("type") for b in blocks), message
        assert all(str(b.get("text", "")).strip() for b in blocks if b["type"] == "text"), message
        results = [
            b.get("tool_use_id") for b in itertools.takewhile(lambda b: b["type"] == "tool_result", blocks)
        ]
        assert sum(b["type"] == "tool_result" for b in blocks) == len(results), message  # results come first
        if message["role"] == "user":
            assert results == open_calls, (open_calls, message)
            open_calls = []
        else:
            assert not results, message
            open_calls = [str(b.get("id")) for b in blocks if b["type"] == "tool_use"]


def chat(client: Client, message: str, files: Sequence[str | Path] = (), **settings: object) -> list[Any]:
    """Send a message (and files) as the page does; return every update (a failure ends with a notice).

    Each update is the list of chat messages of the answer so far; `settings` are the panel's values.
    """
    payload = {"text": message, "files": [handle_file(str(f)) for f in files]}
    job = client.submit(payload, api_name="/chat", **settings)
    updates = list(job)
    job.result()  # raises AppError if the app itself failed
    return updates


def notice_in(update: Any) -> str | None:
    """The failure notice a reply's last update ends with, or None when it ended normally."""
    last = update[-1] if isinstance(update, list) and update else None
    if isinstance(last, dict) and (last.get("metadata") or {}).get("title") == app.NOTICE_TITLE:
        return notice_text(last["content"])
    return None


def answer_text(update: list[dict[str, Any]]) -> str:
    """The answer in one chat update: its messages without a metadata title (boxes are display-only)."""
    return "\n\n".join(m["content"] for m in update if not (m.get("metadata") or {}).get("title"))


def boxes(update: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The display-only boxes of one chat update, by title."""
    return {m["metadata"]["title"]: m for m in update if (m.get("metadata") or {}).get("title")}


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_image(path: Path, size: tuple[int, int] = (4, 3), image_format: str | None = None) -> Path:
    """A small solid-colour image; the format follows the suffix unless given."""
    Image.new("RGB", size, (200, 30, 30)).save(path, format=image_format)
    return path


def write_pdf(path: Path, pages: int = 1) -> Path:
    """A minimal valid PDF with this many (blank) pages."""
    kids = " ".join(f"{3 + n} 0 R" for n in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        *(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>" for _ in range(pages)),
    ]
    path.write_bytes(pdf_document(objects))
    return path


def pdf_document(objects: Sequence[bytes], trailer: bytes = b"") -> bytes:
    """A PDF of these objects (numbered from 1, the first the catalog), with its cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R ".encode() + trailer
    out += f">>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the app process answers on its URL; fail with its output if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"app did not start serving {url} within {timeout}s")
