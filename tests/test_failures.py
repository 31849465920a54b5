"""Every API failure through the service and the real SDK.

HTTP errors and error events go through the in-process upstream (the `Chat` harness); cuts,
stalls and retries go over TCP to the fault-injecting loopback API, where the SDK's retries and
the read timeout act on a real socket. The service's error is asserted by kind and message;
the page's words by `ui.wording.say`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from chat import ChatError, ChatService, ErrorKind, Status, make_client
from chat.limits import MemoryCounters, Quota, QuotaRules
from chat.usage import estimate_tokens
from tests.conftest import Chat, assert_valid_history, free_port, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import (
    TEST_KEY,
    Failure,
    Script,
    Stream,
    cut_mid_stream,
    error_mid_stream,
    replies,
    stall_mid_stream,
)
from ui.wording import say

PARTIAL = "The first half of an answer"


class OverTcp(Chat):
    """The `Chat` harness over a real socket: the service's own client, sent to `base_url`."""

    def __init__(
        self, api: LoopbackMessagesAPI | None, script: Script | None = None, **settings: object
    ) -> None:
        if api is not None:
            api.script = script or replies()
        values = {"api_key": TEST_KEY, "read_timeout": 5.0, "max_retries": 0}
        values["base_url"] = api.url if api is not None else None
        self.settings = make_settings(**{**values, **settings})
        self.upstream = api  # type: ignore[assignment]
        self.service = ChatService(make_client(self.settings.client), self.settings)
        self.conversation = self.service.conversation()


@pytest.fixture
async def api() -> AsyncIterator[LoopbackMessagesAPI]:
    with LoopbackMessagesAPI() as server:
        yield server


async def failed_reply(chat: Chat, message: str = "question"):
    reply = chat.stream(message)
    with pytest.raises(ChatError) as raised:
        async with reply:
            await reply.collect()
    assert reply.status is Status.FAILED and reply.error is raised.value
    assert chat.conversation.exchanges[-1] is reply.exchange
    return reply, raised.value


async def next_turn_is_valid(chat: Chat) -> None:
    reply = await chat.send("and now?")
    assert reply.text == "You said: and now?"
    assert_valid_history(chat.requests[-1]["messages"])


@pytest.mark.parametrize("status", [401, 403])
async def test_a_rejected_key_says_so_and_how_to_set_it(status):
    chat = Chat(Failure(status, "authentication_error", "invalid x-api-key"))
    _, error = await failed_reply(chat)
    assert error.kind is ErrorKind.KEY_REJECTED
    assert f"API key was rejected (error {status})" in error.message
    assert "ANTHROPIC_API_KEY" in say(error)
    await next_turn_is_valid(chat)


async def test_a_rate_limit_says_when_to_try_again():
    limited = Failure(429, "rate_limit_error", "Number of requests exceeded", {"retry-after": "17"})
    _, error = await failed_reply(Chat(limited))
    assert error.kind is ErrorKind.API_RATE_LIMITED and error.facts["retry_after"] == 17
    assert "rate limiting" in error.message and "Try again in 17 seconds" in error.message


async def test_a_rate_limit_without_retry_after_says_to_wait():
    _, error = await failed_reply(Chat(Failure(429, "rate_limit_error", "slow down")))
    assert "Wait a minute and try again" in error.message


async def test_an_overload_before_the_stream_is_retried_then_says_busy(api):
    overloaded = Failure(529, "overloaded_error", "Overloaded", {"retry-after-ms": "10"})
    chat = OverTcp(api, lambda body: overloaded, max_retries=2)
    _, error = await failed_reply(chat)
    assert len(api.requests) == 3  # the first try and the SDK's two retries
    assert error.kind is ErrorKind.API_BUSY
    assert "Claude is busy right now (error 529" in error.message and "Try again" in error.message
    api.script = replies()
    await next_turn_is_valid(chat)


async def test_a_server_error_that_clears_on_retry_is_never_seen(api):
    flaky = Failure(500, "api_error", "Internal server error", {"retry-after-ms": "10"})
    chat = OverTcp(api, replies(flaky), max_retries=2)
    reply = await chat.send("hello")
    assert reply.text == "You said: hello" and reply.status is Status.COMPLETE
    assert len(api.requests) == 2


async def test_no_retries_when_max_retries_is_zero(api):
    chat = OverTcp(api, lambda body: Failure(503, "api_error", "unavailable"), max_retries=0)
    _, error = await failed_reply(chat)
    assert len(api.requests) == 1 and "error 503" in error.message


async def test_an_overload_mid_stream_keeps_the_partial_answer():
    chat = Chat(error_mid_stream(PARTIAL))
    reply, error = await failed_reply(chat)
    assert error.kind is ErrorKind.INTERRUPTED and error.facts["cause"] == "overloaded"
    assert "overloaded mid-answer" in error.message and "press Retry" in say(error)
    assert reply.text == PARTIAL and reply.exchange.partial
    assert chat.messages[-1] == {"role": "assistant", "content": [{"type": "text", "text": PARTIAL}]}
    await next_turn_is_valid(chat)


async def test_another_error_event_mid_stream_names_its_type():
    _, error = await failed_reply(Chat(error_mid_stream(PARTIAL, "api_error", "x")))
    assert error.kind is ErrorKind.INTERRUPTED and error.facts["error"] == "api_error"
    assert "error (api_error)" in error.message and "partial answer is kept" in say(error)


@pytest.mark.parametrize("how", ["truncate", "reset"])
async def test_a_cut_connection_keeps_the_partial_answer(api, how):
    chat = OverTcp(api, replies(cut_mid_stream(PARTIAL, how)))
    reply, error = await failed_reply(chat)
    assert error.kind is ErrorKind.INTERRUPTED
    assert "connection to Claude was cut mid-answer" in error.message
    assert reply.text == PARTIAL and chat.messages[-1]["content"][0]["text"] == PARTIAL
    await next_turn_is_valid(chat)


async def test_a_stream_that_ends_without_its_last_event_keeps_the_partial_answer(api):
    chat = OverTcp(api, replies(cut_mid_stream(PARTIAL, "close")))
    reply, error = await failed_reply(chat)
    assert error.kind is ErrorKind.INTERRUPTED and error.facts["cause"] == "ended_early"
    assert "cut off" in error.message and reply.text == PARTIAL
    await next_turn_is_valid(chat)


async def test_a_stall_fails_after_the_read_timeout_and_keeps_the_partial_answer(api):
    chat = OverTcp(api, replies(stall_mid_stream(PARTIAL)), read_timeout=0.5)
    reply, error = await failed_reply(chat)
    assert error.kind is ErrorKind.INTERRUPTED and error.facts["cause"] == "stall"
    assert "stopped sending for 0.5 seconds" in error.message
    assert reply.text == PARTIAL
    assert api.wait_for(lambda: api.exchanges[0].client_left_at is not None)  # the connection was closed
    await next_turn_is_valid(chat)


async def test_a_conversation_too_long_for_the_context_window_says_to_start_a_new_chat():
    too_long = Failure(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
    chat = Chat(too_long)
    _, error = await failed_reply(chat)
    assert error.kind is ErrorKind.CONTEXT_TOO_LONG
    assert "too long for the model's context window" in error.message and "new chat" in say(error)
    await next_turn_is_valid(chat)


async def test_a_request_too_large_says_to_send_less():
    _, error = await failed_reply(Chat(Failure(413, "request_too_large", "too big")))
    assert error.kind is ErrorKind.CONTEXT_TOO_LONG
    assert "error 413" in error.message and "shorter message" in say(error)


async def test_an_unknown_model_says_to_set_chat_model():
    settings = make_settings(api_key=TEST_KEY, model="claude-nope")
    chat = Chat(Failure(404, "not_found_error", "model: claude-nope"), settings=settings)
    _, error = await failed_reply(chat)
    assert error.kind is ErrorKind.MODEL_NOT_FOUND and error.facts["model"] == "claude-nope"
    assert "`claude-nope` was not found" in error.message and "CHAT_MODEL" in say(error)
    await next_turn_is_valid(chat)


async def test_an_invalid_request_passes_on_what_the_api_objected_to():
    objection = "max_tokens: 999999 > 64000, which is the maximum allowed number of output tokens"
    _, error = await failed_reply(Chat(Failure(400, "invalid_request_error", objection)))
    assert error.kind is ErrorKind.INVALID_REQUEST and objection in error.message
    assert "max tokens" in say(error) and "Settings" in say(error)


async def test_an_unreachable_api_says_to_check_the_network():
    nobody = f"http://127.0.0.1:{free_port()}"
    _, error = await failed_reply(OverTcp(None, base_url=nobody, read_timeout=0.5))
    assert error.kind is ErrorKind.UNREACHABLE
    assert "Could not reach the Anthropic API" in error.message


async def test_a_garbled_stream_gets_the_generic_message_and_logs_a_traceback(caplog):
    garbled = Stream([b"event: message_start\ndata: {not json\n\n"])
    _, error = await failed_reply(Chat(garbled))
    assert error.kind is ErrorKind.UNEXPECTED
    assert error.message.startswith("Something went wrong while answering")
    assert "Traceback" in caplog.text and "unexpected failure" in caplog.text
    assert "{not json" not in say(error)


async def test_a_failed_reply_settles_on_the_input_the_api_counted_plus_an_estimate_of_the_output():
    counters = MemoryCounters()
    chat = Chat(error_mid_stream(PARTIAL), quota=Quota(QuotaRules(), counters))
    await failed_reply(chat)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert counters.spent("app", today) == 10 + estimate_tokens(PARTIAL)  # message_start said 10 input tokens
