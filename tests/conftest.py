"""Shared fakes and servers: a scripted stand-in client, the loopback API, the running app."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from anthropic.types import Message

import app
from chat import Settings
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
    app.serve(demo, settings, server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
