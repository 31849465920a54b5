"""Every API failure through the service and the real SDK, against the fault-injecting loopback API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chat import ChatError, ChatSession, Settings, make_client
from chat.limits import estimate_tokens
from chat.reply import Reply, ReplyStatus
from tests.conftest import assert_valid_history, free_port
from tests.loopback_api import (
    Failure,
    LoopbackMessagesAPI,
    Script,
    Stream,
    cut_mid_stream,
    error_mid_stream,
    replies,
    stall_mid_stream,
)

PARTIAL = "The first half of an answer"


@pytest.fixture
async def api() -> AsyncIterator[LoopbackMessagesAPI]:
    with LoopbackMessagesAPI() as server:
        yield server


def session_for(api: LoopbackMessagesAPI, script: Script, **overrides: object) -> ChatSession:
    api.script = script
    options = {"read_timeout": 5.0, "max_retries": 0, **overrides}
    settings = Settings(api_key="sk-test-not-real", base_url=api.url, **options)
    return ChatSession(make_client(settings), settings)


async def failed_reply(session: ChatSession, message: str = "question") -> tuple[Reply, ChatError]:
    reply = session.stream_reply(message)
    with pytest.raises(ChatError) as raised:
        async with reply:
            await reply.collect()
    return reply, raised.value


async def next_turn_is_valid(session: ChatSession, api: LoopbackMessagesAPI) -> None:
    api.script = replies()
    async with session.stream_reply("and now?") as reply:
        assert await reply.collect() == "You said: and now?"
    assert_valid_history(api.requests[-1]["messages"])


@pytest.mark.parametrize("status", [401, 403])
async def test_a_rejected_key_says_so_and_how_to_set_it(api, status):
    session = session_for(api, replies(Failure(status, "authentication_error", "invalid x-api-key")))
    _, error = await failed_reply(session)
    assert f"API key was rejected (error {status})" in error.message
    assert "ANTHROPIC_API_KEY" in error.message
    await next_turn_is_valid(session, api)


async def test_a_rate_limit_says_when_to_try_again(api):
    limited = Failure(429, "rate_limit_error", "Number of requests exceeded", {"retry-after": "17"})
    _, error = await failed_reply(session_for(api, replies(limited)))
    assert "rate limiting" in error.message and "Try again in 17 seconds" in error.message


async def test_a_rate_limit_without_retry_after_says_to_wait(api):
    _, error = await failed_reply(session_for(api, replies(Failure(429, "rate_limit_error", "slow down"))))
    assert "Wait a minute and try again" in error.message


async def test_an_overload_before_the_stream_is_retried_then_says_busy(api):
    overloaded = Failure(529, "overloaded_error", "Overloaded", {"retry-after-ms": "10"})
    session = session_for(api, lambda body: overloaded, max_retries=2)
    _, error = await failed_reply(session)
    assert len(api.requests) == 3  # the first try and the SDK's two retries
    assert "Claude is busy right now (error 529" in error.message and "Try again" in error.message
    await next_turn_is_valid(session, api)


async def test_a_server_error_that_clears_on_retry_is_never_seen(api):
    flaky = Failure(500, "api_error", "Internal server error", {"retry-after-ms": "10"})
    session = session_for(api, replies(flaky), max_retries=2)
    async with session.stream_reply("hello") as reply:
        assert await reply.collect() == "You said: hello"
    assert len(api.requests) == 2


async def test_no_retries_when_max_retries_is_zero(api):
    session = session_for(api, lambda body: Failure(503, "api_error", "unavailable"), max_retries=0)
    _, error = await failed_reply(session)
    assert len(api.requests) == 1 and "error 503" in error.message


async def test_an_overload_mid_stream_keeps_the_partial_answer(api):
    session = session_for(api, replies(error_mid_stream(PARTIAL)))
    reply, error = await failed_reply(session)
    assert "overloaded mid-answer" in error.message and "Retry" in error.message
    assert reply.status is ReplyStatus.FAILED and reply.text == PARTIAL
    assert session.messages[-1] == {"role": "assistant", "content": [{"type": "text", "text": PARTIAL}]}
    await next_turn_is_valid(session, api)


async def test_another_error_event_mid_stream_names_its_type(api):
    _, error = await failed_reply(session_for(api, replies(error_mid_stream(PARTIAL, "api_error", "x"))))
    assert "error (api_error)" in error.message and "partial answer is kept" in error.message


@pytest.mark.parametrize("how", ["truncate", "reset"])
async def test_a_cut_connection_keeps_the_partial_answer(api, how):
    session = session_for(api, replies(cut_mid_stream(PARTIAL, how)))
    reply, error = await failed_reply(session)
    assert "connection to Claude was cut mid-answer" in error.message
    assert reply.text == PARTIAL and session.messages[-1]["content"][0]["text"] == PARTIAL
    await next_turn_is_valid(session, api)


async def test_a_stream_that_ends_without_its_last_event_keeps_the_partial_answer(api):
    session = session_for(api, replies(cut_mid_stream(PARTIAL, "close")))
    reply, error = await failed_reply(session)
    assert "cut off" in error.message and reply.text == PARTIAL
    await next_turn_is_valid(session, api)


async def test_a_stall_fails_after_the_read_timeout_and_keeps_the_partial_answer(api):
    session = session_for(api, replies(stall_mid_stream(PARTIAL)), read_timeout=0.5)
    reply, error = await failed_reply(session)
    assert "stopped sending for 0.5 seconds" in error.message
    assert reply.text == PARTIAL
    assert api.wait_for(lambda: api.exchanges[0].client_left_at is not None)  # the connection was closed
    await next_turn_is_valid(session, api)


async def test_a_conversation_too_long_for_the_context_window_says_to_start_a_new_chat(api):
    too_long = Failure(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
    session = session_for(api, replies(too_long))
    _, error = await failed_reply(session)
    assert "too long for the model's context window" in error.message and "new chat" in error.message
    await next_turn_is_valid(session, api)


async def test_a_request_too_large_says_to_send_less(api):
    _, error = await failed_reply(session_for(api, replies(Failure(413, "request_too_large", "too big"))))
    assert "error 413" in error.message and "shorter message" in error.message


async def test_an_unknown_model_says_to_set_chat_model(api):
    session = session_for(
        api, replies(Failure(404, "not_found_error", "model: claude-nope")), model="claude-nope"
    )
    _, error = await failed_reply(session)
    assert "`claude-nope` was not found" in error.message and "CHAT_MODEL" in error.message
    await next_turn_is_valid(session, api)


async def test_an_invalid_request_passes_on_what_the_api_objected_to(api):
    objection = "max_tokens: 999999 > 64000, which is the maximum allowed number of output tokens"
    _, error = await failed_reply(session_for(api, replies(Failure(400, "invalid_request_error", objection))))
    assert objection in error.message and "CHAT_MAX_TOKENS" in error.message


async def test_an_unreachable_api_says_to_check_the_network():
    nobody = f"http://127.0.0.1:{free_port()}"
    settings = Settings(api_key="sk-test-not-real", base_url=nobody, max_retries=0, read_timeout=0.5)
    _, error = await failed_reply(ChatSession(make_client(settings), settings))
    assert "Could not reach the Anthropic API" in error.message


async def test_a_garbled_stream_gets_the_generic_message_and_logs_a_traceback(api, caplog):
    garbled = Stream([b"event: message_start\ndata: {not json\n\n"])
    _, error = await failed_reply(session_for(api, replies(garbled)))
    assert error.message.startswith("Something went wrong while answering")
    assert "Traceback" in caplog.text and "unexpected failure" in caplog.text
    assert "{not json" not in error.message


async def test_a_failed_reply_charges_the_input_the_api_counted_plus_an_estimate_of_the_output(api):
    session = session_for(api, replies(error_mid_stream(PARTIAL)))
    await failed_reply(session)
    assert session.budget.spent == 10 + estimate_tokens(PARTIAL)  # message_start said 10 input tokens
