"""The cap on concurrent streams: beyond it a reply is refused at once with a clear message."""

from __future__ import annotations

import copy
import dataclasses
from contextlib import nullcontext

import pytest

from chat import ChatError, ChatSession, ReplyStatus, StreamSlots
from tests.conftest import Scripted, ScriptedClient


def one_slot_tabs(settings, *replies: Scripted) -> tuple[ScriptedClient, ChatSession, ChatSession]:
    client = ScriptedClient(*replies)
    template = ChatSession(client, dataclasses.replace(settings, max_streams=1))
    return client, copy.deepcopy(template), copy.deepcopy(template)


async def test_a_reply_beyond_the_cap_is_refused_as_busy(settings):
    client, first, second = one_slot_tabs(settings, Scripted(["a", "b"]), Scripted(["c"]))
    async with first.stream_reply("one") as streaming:
        await anext(aiter(streaming))  # the first tab's answer is streaming and holds the slot
        with pytest.raises(ChatError, match="busy"):
            async with second.stream_reply("two") as refused:
                await refused.collect()
    assert refused.status is ReplyStatus.FAILED
    assert len(client.requests) == 1  # the refused reply never reached the API


async def test_a_refused_turn_is_not_sent_to_claude_again(settings):
    client, first, second = one_slot_tabs(settings, Scripted(["a"]), Scripted(["b"]))
    async with first.stream_reply("one") as streaming:
        await anext(aiter(streaming))
        with pytest.raises(ChatError):
            async with second.stream_reply("refused") as refused:
                await refused.collect()
    async with second.stream_reply("retry") as retried:
        await retried.collect()
    assert client.requests[1]["messages"] == [{"role": "user", "content": "retry"}]


@pytest.mark.parametrize("ending", ["complete", "stopped", "failed"])
async def test_the_slot_is_given_back_however_the_reply_ends(settings, ending):
    failure = RuntimeError("boom") if ending == "failed" else None
    _client, first, second = one_slot_tabs(settings, Scripted(["a", "b"], fail_with=failure), Scripted(["c"]))
    with pytest.raises(ChatError) if ending == "failed" else nullcontext():
        async with first.stream_reply("one") as reply:
            async for _ in reply:
                if ending == "stopped":
                    break
    assert first.slots.in_use == 0
    async with second.stream_reply("two") as reply:
        assert await reply.collect() == "c"


def test_copies_of_a_session_share_one_cap(settings):
    template = ChatSession(ScriptedClient(), settings)
    assert copy.deepcopy(template).slots is copy.deepcopy(template).slots is template.slots
    assert template.slots.capacity == settings.max_streams


def test_a_cap_below_one_is_a_programming_error():
    with pytest.raises(ValueError, match="at least 1"):
        StreamSlots(0)
