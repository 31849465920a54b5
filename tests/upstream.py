"""The one fake-upstream language of the tests: scripts of streams and failures (chat/wire.py).

A script is served two ways: in process through the real SDK (`InProcess`, an httpx2
transport), or over TCP on 127.0.0.1 (tests/loopback_api.py) where sockets matter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anthropic
import httpx2

from chat.models import BUILT_IN_MODELS
from chat.wire import (
    Failure,
    HangUp,
    Response,
    Script,
    ScriptedMessage,
    ScriptTransport,
    Stream,
    TextBlock,
    ThinkingBlock,
    UpstreamCall,
    error_event,
    message_events,
    recorded,
    split_into_chunks,
)

FIXTURES = Path(__file__).parent / "fixtures"
TEST_KEY = "sk-test-not-real"

__all__ = ["Failure", "Response", "Script", "Stream", "UpstreamCall"]


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message of a request body."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if part.get("type") == "text")


def text_reply(
    *chunks: str,
    thinking: str = "",
    model: str = "claude-sonnet-5-5",
    delay: float = 0.0,
    input_tokens: int = 1,
) -> Stream:
    """A stream of these text deltas (after a thinking block, if given), its usage saying `input_tokens`."""
    blocks: list[TextBlock | ThinkingBlock] = [ThinkingBlock([thinking], signature="sig")] if thinking else []
    blocks.append(TextBlock(list(chunks)))
    return Stream.of(ScriptedMessage(blocks, model=model, input_tokens=input_tokens), delay=delay)


def echo_reply(text: str, *, delay: float = 0.0, words_per_chunk: int = 2) -> Stream:
    """A text stream of these words, a few at a time."""
    return Stream(text_events(text, words_per_chunk), delay=delay)


def echo_script(delay: float = 0.0) -> Script:
    """Answer each request with 'You said: <last user text>'."""
    return lambda body: echo_reply(f"You said: {last_user_text(body)}", delay=delay)


def thinking_script(**message: Any) -> Script:
    """Answer request n with thinking 'sig-n' (block 0), then 'Answer n: <last user text>' (block 1)."""

    def script(body: dict[str, Any]) -> Stream:
        number = sum(1 for m in body["messages"] if m["role"] == "user")
        blocks = [
            ThinkingBlock(["I should ", f"answer turn {number}."], signature=f"sig-{number}"),
            TextBlock(["Answer ", f"{number}: ", last_user_text(body)]),
        ]
        return Stream.of(ScriptedMessage(blocks, **message), delay=0.02)

    return script


def replies(*responses: Response, then: Script | None = None) -> Script:
    """Answer requests with these responses in turn, then as `then` says (echo by default)."""
    queue: Iterator[Response] = iter(responses)
    after = then or echo_script()
    return lambda body: next(queue, None) or after(body)


def text_events(text: str, words_per_chunk: int = 2) -> list[bytes]:
    """The whole event list of a streamed text reply."""
    message = ScriptedMessage([TextBlock(split_into_chunks(text, words_per_chunk))], model="loopback")
    return list(message_events(message))


def fixture(name: str, **pacing: Any) -> Stream:
    """A recorded stream from tests/fixtures (wire traffic written from the API docs' transcripts)."""
    return Stream(recorded(FIXTURES / name), **pacing)


def _sent_through(events: Sequence[bytes]) -> int:
    """How many events carry the whole text: everything up to its last delta."""
    return 1 + max(i for i, event in enumerate(events) if b"content_block_delta" in event)


def error_mid_stream(text: str, error_type: str = "overloaded_error", message: str = "Overloaded") -> Stream:
    """A stream that sends `text`, then an `event: error` instead of the end."""
    events = text_events(text)
    return Stream([*events[: _sent_through(events)], error_event(error_type, message)])


def cut_mid_stream(text: str, how: HangUp = "truncate") -> Stream:
    """A stream that sends `text`, then loses its connection as `how` says."""
    events = text_events(text)
    return Stream(events, hang_up_after=_sent_through(events), hang_up=how)


def stall_mid_stream(text: str) -> Stream:
    """A stream that sends `text`, then goes silent with the connection open."""
    events = text_events(text)
    return Stream(events, stall_after=_sent_through(events))


class InProcess:
    """A script served in process to a real AsyncAnthropic (no sockets): `client`, `requests`, `calls`."""

    def __init__(self, script: Script | None = None, *, max_retries: int = 0) -> None:
        self.transport = ScriptTransport(script or echo_script(), BUILT_IN_MODELS)
        http_client = httpx2.AsyncClient(transport=self.transport)
        self.client = anthropic.AsyncAnthropic(
            api_key=TEST_KEY, http_client=http_client, max_retries=max_retries
        )

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies received, oldest first."""
        return self.transport.requests

    @property
    def calls(self) -> list[UpstreamCall]:
        """Each request and what became of its stream."""
        return self.transport.calls
