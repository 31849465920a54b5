"""Shared fakes and servers: a scripted stand-in client, the loopback API, the running app."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from anthropic.types import Message
from gradio_client import Client, handle_file
from PIL import Image

import app
from chat import Settings
from chat.wire import ScriptedMessage, message_events
from tests.loopback_api import LoopbackMessagesAPI, echo_script

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Scripted:
    """One scripted reply: these text chunks, then maybe a failure instead of the end."""

    chunks: Sequence[str]
    fail_with: Exception | None = None
    thinking: str = ""


class _ScriptedStream:
    def __init__(self, script: Scripted) -> None:
        self.script = script
        self.closed = False

    async def __aenter__(self) -> _ScriptedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.closed = True

    async def __aiter__(self) -> Any:
        if self.script.thinking:
            yield SimpleNamespace(type="thinking", thinking=self.script.thinking)
        for chunk in self.script.chunks:
            yield SimpleNamespace(type="content_block_delta")
            yield SimpleNamespace(type="text", text=chunk)
        if self.script.fail_with is not None:
            raise self.script.fail_with

    async def get_final_message(self) -> Message:
        content: list[dict[str, Any]] = []
        if self.script.thinking:
            content.append({"type": "thinking", "thinking": self.script.thinking, "signature": "sig"})
        content.append({"type": "text", "text": "".join(self.script.chunks)})
        return Message.model_validate(
            {
                "id": "msg_scripted",
                "type": "message",
                "role": "assistant",
                "model": "scripted",
                "content": content,
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": len(self.script.chunks)},
            }
        )


class ScriptedClient:
    """Stands in for AsyncAnthropic: replays scripted replies and records each request."""

    def __init__(self, *replies: Scripted) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.streams: list[_ScriptedStream] = []
        self.messages = self

    def stream(self, **request: Any) -> _ScriptedStream:
        self.requests.append(request)
        stream = _ScriptedStream(self.replies.pop(0))
        self.streams.append(stream)
        return stream


def sdk_client_streaming(
    *messages: ScriptedMessage, seen: list[Any] | None = None
) -> anthropic.AsyncAnthropic:
    """A real AsyncAnthropic whose HTTP layer streams each scripted message in wire format, in turn."""
    bodies = [b"".join(message_events(message)) for message in messages]

    def handler(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(json.loads(request.content))
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=bodies.pop(0))

    http_client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return anthropic.AsyncAnthropic(api_key="sk-test-not-real", http_client=http_client, max_retries=0)


@pytest.fixture
def settings() -> Settings:
    return Settings(api_key="sk-test-not-real", model="claude-sonnet-5-5", max_tokens=256)


@pytest.fixture
def loopback_api() -> Iterator[LoopbackMessagesAPI]:
    with LoopbackMessagesAPI(echo_script(delay=0.01)) as api:
        yield api


@contextmanager
def launched_app(settings: Settings) -> Iterator[str]:
    """The real app for these settings, served on a free local port; yields its URL."""
    demo = app.build_demo(settings)
    app.start(demo, settings, server_port=free_port(), quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


def assert_valid_history(messages: Sequence[dict[str, Any]]) -> None:
    """The rules the Messages API sets: starts with the user, roles alternate, no empty content."""
    assert messages and messages[0]["role"] == "user"
    roles = [message["role"] for message in messages]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    for message in messages:
        content = message["content"]
        texts = [content] if isinstance(content, str) else [b.get("text", "x") for b in content]
        assert content and all(text.strip() for text in texts), message


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
        return last["content"]
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


def write_pdf(path: Path, pages: int = 1, extra: str = "") -> Path:
    """A minimal PDF with this many (blank) page objects."""
    kids = " ".join(f"{3 + n} 0 R" for n in range(pages))
    objects = [
        "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj",
        f"2 0 obj << /Type /Pages /Kids [{kids}] /Count {pages} >> endobj",
        *(
            f"{3 + n} 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj"
            for n in range(pages)
        ),
    ]
    path.write_bytes(
        ("%PDF-1.4\n" + "\n".join(objects) + f"\ntrailer << /Root 1 0 R {extra}>>\n%%EOF\n").encode()
    )
    return path


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
