"""The cap on concurrent streams: beyond it a reply is refused at once with a clear message."""

from __future__ import annotations

from contextlib import nullcontext

import pytest

from chat import ChatError, Conversation, ErrorKind, Status, StreamSlots
from tests.conftest import Chat, make_settings
from tests.upstream import TEST_KEY, Stream, cut_mid_stream, text_reply


def one_slot_tabs(*replies: Stream) -> tuple[Chat, Conversation, Conversation]:
    chat = Chat(*replies, settings=make_settings(api_key=TEST_KEY, max_tokens=256, max_streams=1))
    return chat, chat.conversation, chat.service.conversation()


async def test_a_reply_beyond_the_cap_is_refused_as_busy():
    chat, first, second = one_slot_tabs(text_reply("a", "b"), text_reply("c"))
    async with chat.service.stream_reply(first, "one") as streaming:
        await anext(aiter(streaming))  # the first tab's answer is streaming and holds the slot
        with pytest.raises(ChatError, match="busy") as raised:
            async with chat.service.stream_reply(second, "two") as refused:
                await refused.collect()
    assert raised.value.kind is ErrorKind.APP_BUSY
    assert refused.status is Status.FAILED
    assert len(chat.requests) == 1  # the refused reply never reached the API


async def test_a_refused_turn_is_not_sent_to_claude_again():
    chat, first, second = one_slot_tabs(text_reply("a"), text_reply("b"))
    async with chat.service.stream_reply(first, "one") as streaming:
        await anext(aiter(streaming))
        with pytest.raises(ChatError):
            async with chat.service.stream_reply(second, "refused") as refused:
                await refused.collect()
    async with chat.service.stream_reply(second, "retry") as retried:
        await retried.collect()
    assert chat.requests[1]["messages"] == [{"role": "user", "content": "retry"}]


@pytest.mark.parametrize("ending", ["complete", "stopped", "failed"])
async def test_the_slot_is_given_back_however_the_reply_ends(ending):
    answer = cut_mid_stream("a b") if ending == "failed" else text_reply("a", "b")
    chat, first, second = one_slot_tabs(answer, text_reply("c"))
    with pytest.raises(ChatError) if ending == "failed" else nullcontext():
        async with chat.service.stream_reply(first, "one") as reply:
            async for _ in reply:
                if ending == "stopped":
                    break
    assert first.exchanges[0].status.value == ending
    assert chat.service.slots.in_use == 0
    async with chat.service.stream_reply(second, "two") as reply:
        assert await reply.collect() == "c"


async def test_conversations_of_a_service_share_one_cap():
    chat = Chat(text_reply("a", "b"), text_reply("c", "d"))
    assert chat.service.slots.capacity == chat.settings.guards.max_streams
    first, second = chat.conversation, chat.service.conversation()
    async with chat.service.stream_reply(first, "one") as one:
        await anext(aiter(one))
        async with chat.service.stream_reply(second, "two") as two:
            await anext(aiter(two))
            assert chat.service.slots.in_use == 2
    assert chat.service.slots.in_use == 0


def test_a_cap_below_one_is_a_programming_error():
    with pytest.raises(ValueError, match="at least 1"):
        StreamSlots(0)
