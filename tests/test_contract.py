"""The real SDK parsing streams written from the documented wire format, through the service."""

from __future__ import annotations

import json

import anthropic
import httpx2
import pytest

from chat import ChatError, ChatSession, ReplyStatus, TextDelta, ThinkingDelta
from tests.conftest import FIXTURES


def client_serving(*fixture_names: str, seen: list[dict] | None = None) -> anthropic.AsyncAnthropic:
    """A real AsyncAnthropic whose HTTP layer answers each request with the next fixture."""
    bodies = [(FIXTURES / name).read_bytes() for name in fixture_names]

    def handler(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(json.loads(request.content))
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, content=bodies.pop(0))

    http_client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return anthropic.AsyncAnthropic(api_key="sk-test-not-real", http_client=http_client, max_retries=0)


async def collect_deltas(session: ChatSession, message: str) -> list:
    async with session.stream_reply(message) as reply:
        return [delta async for delta in reply]


async def test_text_stream_yields_each_text_delta(settings):
    session = ChatSession(client_serving("text.sse"), settings)
    deltas = await collect_deltas(session, "hi")
    assert deltas == [TextDelta("Hello"), TextDelta("! How can I "), TextDelta("help you today?")]


async def test_text_stream_final_message_matches_the_deltas(settings):
    session = ChatSession(client_serving("text.sse"), settings)
    async with session.stream_reply("hi") as reply:
        text = await reply.collect()
    assert reply.status is ReplyStatus.COMPLETE
    assert reply.message.content[0].text == text == "Hello! How can I help you today?"
    assert reply.message.stop_reason == "end_turn"
    assert (reply.message.usage.input_tokens, reply.message.usage.output_tokens) == (25, 12)


async def test_thinking_stream_yields_thinking_before_text(settings):
    session = ChatSession(client_serving("thinking.sse"), settings)
    deltas = await collect_deltas(session, "27 * 453?")
    assert deltas == [
        ThinkingDelta("The user wants 27 * 453. "),
        ThinkingDelta("27 * 453 = 12231."),
        TextDelta("27 * 453 = "),
        TextDelta("12,231."),
    ]


async def test_thinking_stream_history_keeps_thinking_and_signature(settings):
    seen: list[dict] = []
    session = ChatSession(client_serving("thinking.sse", "text.sse", seen=seen), settings)
    await collect_deltas(session, "27 * 453?")
    await collect_deltas(session, "thanks")
    answer = seen[1]["messages"][1]
    assert answer["role"] == "assistant"
    assert answer["content"][0] == {
        "type": "thinking",
        "thinking": "The user wants 27 * 453. 27 * 453 = 12231.",
        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
    }
    assert answer["content"][1] == {"type": "text", "text": "27 * 453 = 12,231."}


async def test_mid_stream_error_raises_chat_error_and_keeps_partial_text(settings):
    session = ChatSession(client_serving("error_midstream.sse"), settings)
    with pytest.raises(ChatError) as raised:
        await collect_deltas(session, "long question")
    assert "overloaded" in raised.value.message.lower()
    assert session.messages[-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "The first half of an answer"}],
    }


async def test_next_turn_after_mid_stream_error_is_valid(settings):
    seen: list[dict] = []
    session = ChatSession(client_serving("error_midstream.sse", "text.sse", seen=seen), settings)
    with pytest.raises(ChatError):
        await collect_deltas(session, "long question")
    await collect_deltas(session, "go on")
    assert [m["role"] for m in seen[1]["messages"]] == ["user", "assistant", "user"]
