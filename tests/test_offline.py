"""The offline model: the real SDK and the same service path, with no key and no network."""

from __future__ import annotations

from chat import ChatService, Status, make_client
from chat.offline import OFFLINE_MODEL, offline_answer
from tests.conftest import make_settings


def offline_service(**settings: object) -> ChatService:
    built = make_settings(offline_delay=0, **settings)
    return ChatService(make_client(built.client), built)


async def reply_to(service: ChatService, text: str):
    async with service.stream_reply(service.conversation(), text) as reply:
        deltas = [delta async for delta in reply]
    return reply, deltas


async def test_offline_model_streams_through_the_sdk_in_several_deltas():
    reply, deltas = await reply_to(offline_service(), "hello")
    assert len(deltas) > 5
    assert reply.status is Status.COMPLETE
    assert (
        reply.message.content[0].text == reply.text == offline_answer([{"role": "user", "content": "hello"}])
    )
    assert reply.exchange.text == reply.text


async def test_an_offline_answer_is_recorded_as_the_offline_models_not_the_model_asked_for():
    reply, _ = await reply_to(offline_service(model="claude-opus-5-5"), "hi")
    assert reply.exchange.model == OFFLINE_MODEL
    assert reply.exchange.request["model"] == "claude-opus-5-5"


async def test_offline_model_says_it_is_offline_and_how_to_set_the_key():
    reply, _ = await reply_to(offline_service(), "hi")
    assert "offline demo model" in reply.text and "ANTHROPIC_API_KEY" in reply.text


def test_offline_answer_is_deterministic_and_counts_earlier_turns():
    history = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert offline_answer(history) == offline_answer(history)
    assert "1 earlier turn " in offline_answer(history)


async def test_offline_model_is_used_even_with_a_key_when_forced():
    service = offline_service(api_key="sk-real-looking", force_offline=True)
    assert service.settings.offline
    reply, _ = await reply_to(service, "hi")
    assert "offline demo model" in reply.text


async def test_the_offline_model_counts_tokens():
    client = offline_service().client
    counted = await client.messages.count_tokens(
        model="offline-demo", messages=[{"role": "user", "content": "How many tokens is this?"}]
    )
    assert counted.input_tokens > 0
