"""The real SDK parsing streams recorded from the documented wire format, through the service."""

from __future__ import annotations

import pytest

from chat import ChatError, ErrorKind, Status, TextDelta, ThinkingDelta
from tests.conftest import Chat
from tests.upstream import fixture


async def collect_deltas(chat: Chat, message: str) -> list:
    async with chat.stream(message) as reply:
        return [delta async for delta in reply]


async def test_text_stream_yields_each_text_delta():
    chat = Chat(fixture("text.sse"))
    deltas = await collect_deltas(chat, "hi")
    assert deltas == [TextDelta("Hello"), TextDelta("! How can I "), TextDelta("help you today?")]


async def test_text_stream_final_message_matches_the_deltas():
    chat = Chat(fixture("text.sse"))
    async with chat.stream("hi") as reply:
        text = await reply.collect()
    assert reply.status is Status.COMPLETE
    assert reply.message.content[0].text == text == "Hello! How can I help you today?"
    assert reply.message.stop_reason == "end_turn"
    assert (reply.message.usage.input_tokens, reply.message.usage.output_tokens) == (25, 12)


async def test_thinking_stream_yields_thinking_before_text():
    chat = Chat(fixture("thinking.sse"))
    deltas = await collect_deltas(chat, "27 * 453?")
    assert deltas == [
        ThinkingDelta("The user wants 27 * 453. "),
        ThinkingDelta("27 * 453 = 12231."),
        TextDelta("27 * 453 = "),
        TextDelta("12,231."),
    ]


async def test_thinking_stream_history_keeps_thinking_and_signature():
    chat = Chat(fixture("thinking.sse"), fixture("text.sse"))
    await collect_deltas(chat, "27 * 453?")
    await collect_deltas(chat, "thanks")
    answer = chat.requests[1]["messages"][1]
    assert answer["role"] == "assistant"
    assert answer["content"][0] == {
        "type": "thinking",
        "thinking": "The user wants 27 * 453. 27 * 453 = 12231.",
        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
    }
    assert answer["content"][1] == {"type": "text", "text": "27 * 453 = 12,231."}


async def test_mid_stream_error_raises_chat_error_and_keeps_partial_text():
    chat = Chat(fixture("error_midstream.sse"))
    with pytest.raises(ChatError) as raised:
        await collect_deltas(chat, "long question")
    assert raised.value.kind is ErrorKind.INTERRUPTED
    assert "overloaded" in raised.value.message.lower()
    assert chat.messages[-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "The first half of an answer"}],
    }


async def test_next_turn_after_mid_stream_error_is_valid():
    chat = Chat(fixture("error_midstream.sse"), fixture("text.sse"))
    with pytest.raises(ChatError):
        await collect_deltas(chat, "long question")
    await collect_deltas(chat, "go on")
    assert [m["role"] for m in chat.requests[1]["messages"]] == ["user", "assistant", "user"]
