"""The offline model: the real SDK and the same service path, with no key and no network."""

from __future__ import annotations

from chat import ChatSession, ReplyStatus, Settings, make_client
from chat.offline import offline_answer


async def test_offline_model_streams_through_the_sdk_in_several_deltas():
    settings = Settings(offline_delay=0)
    session = ChatSession(make_client(settings), settings)
    async with session.stream_reply("hello") as reply:
        deltas = [delta async for delta in reply]
    assert len(deltas) > 5
    assert reply.status is ReplyStatus.COMPLETE
    assert (
        reply.message.content[0].text == reply.text == offline_answer([{"role": "user", "content": "hello"}])
    )


async def test_offline_model_says_it_is_offline_and_how_to_set_the_key():
    settings = Settings(offline_delay=0)
    reply = ChatSession(make_client(settings), settings).stream_reply("hi")
    async with reply:
        text = await reply.collect()
    assert "offline demo model" in text and "ANTHROPIC_API_KEY" in text


def test_offline_answer_is_deterministic_and_counts_earlier_turns():
    history = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert offline_answer(history) == offline_answer(history)
    assert "1 earlier turn " in offline_answer(history)


async def test_offline_model_is_used_even_with_a_key_when_forced():
    settings = Settings(api_key="sk-real-looking", force_offline=True, offline_delay=0)
    async with ChatSession(make_client(settings), settings).stream_reply("hi") as reply:
        assert "offline demo model" in await reply.collect()
