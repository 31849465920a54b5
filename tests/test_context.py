"""The context meter and the check before a request near the window (chat/context.py), via the real SDK."""

from __future__ import annotations

import pytest

from chat import ChatError, ErrorKind, Status
from chat.context import ContextUse
from chat.limits import APP_SCOPE, utc_today
from chat.models import ModelChoice
from chat.wire import ScriptedMessage, Stream, TextBlock
from tests.conftest import Chat
from tests.upstream import Failure, text_reply

WINDOW = 1_000
SMALL = [ModelChoice("claude-sonnet-5-5", "Claude Sonnet 5.5", context_window=WINDOW)]


def near_full_chat(count: int | Failure, input_tokens: int = 700) -> Chat:
    """A chat on a model with a 1,000-token window whose first answer used about 700 of it."""
    chat = Chat(text_reply("First ", "answer.", input_tokens=input_tokens), models=SMALL)
    chat.upstream.transport.count = lambda body: count
    return chat


async def test_the_meter_reads_the_last_answers_prompt_cache_and_output():
    cached = {"cache_read_input_tokens": 50, "cache_creation_input_tokens": 30}
    message = ScriptedMessage([TextBlock(["three words here"])], input_tokens=100, usage_extra=cached)
    chat = Chat(text_reply("Earlier."), Stream.of(message), models=SMALL)
    await chat.send("one")
    await chat.send("two")
    assert chat.service.context(chat.conversation) == ContextUse(100 + 50 + 30 + 3, WINDOW)


async def test_the_meter_warns_from_eighty_percent():
    assert not ContextUse(799, WINDOW).near
    assert ContextUse(800, WINDOW).near and ContextUse(800, WINDOW).fraction == 0.8


async def test_a_conversation_far_from_the_window_is_sent_without_counting():
    chat = Chat()  # the built-in models: a 1M-token window
    await chat.send("one")
    await chat.send("two")
    assert chat.upstream.transport.counted == [] and len(chat.requests) == 2


async def test_near_the_window_a_request_that_does_not_fit_is_refused_and_not_sent():
    chat = near_full_chat(count=800)
    await chat.send("one")
    with pytest.raises(ChatError) as refusal:
        await chat.send("two")
    error = refusal.value
    assert error.kind is ErrorKind.CONTEXT_TOO_LONG
    assert "800 tokens" in error.message and "256" in error.message and "1,000-token" in error.message
    assert "Nothing was sent" in error.message
    assert len(chat.upstream.transport.counted) == 1 and len(chat.requests) == 1
    assert chat.conversation.exchanges[-1].status is Status.FAILED
    assert chat.conversation.exchanges[-1].error is error


async def test_the_count_is_asked_with_the_request_count_tokens_takes():
    chat = near_full_chat(count=800)
    await chat.send("one")
    with pytest.raises(ChatError):
        await chat.send("two")
    counted = chat.upstream.transport.counted[0]
    assert set(counted) <= {"messages", "model", "system", "thinking", "cache_control", "output_config"}
    assert counted["messages"][-1] == {"role": "user", "content": "two"}


async def test_a_refused_request_charges_nothing_to_the_budget():
    chat = near_full_chat(count=800)
    await chat.send("one")
    counters, day = chat.service.quota.counters, utc_today().isoformat()
    spent = counters.spent(APP_SCOPE, day)
    with pytest.raises(ChatError):
        await chat.send("two")
    assert counters.spent(APP_SCOPE, day) == spent


async def test_near_the_window_a_request_that_fits_is_sent():
    chat = near_full_chat(count=744)  # 744 + 256 max tokens: exactly the window
    await chat.send("one")
    await chat.send("two")
    assert len(chat.upstream.transport.counted) == 1 and len(chat.requests) == 2
    assert chat.conversation.exchanges[-1].status is Status.COMPLETE


@pytest.mark.parametrize(
    "failure",
    [
        Failure(404, "not_found_error", "Not Found"),  # a provider without count_tokens
        Failure(500, "api_error", "Internal server error"),
    ],
)
async def test_a_failing_count_still_sends_the_request(failure, caplog):
    chat = near_full_chat(count=failure)
    await chat.send("one")
    await chat.send("two")
    assert len(chat.upstream.transport.counted) == 1 and len(chat.requests) == 2
    assert "count_tokens failed" in caplog.text


async def test_a_first_message_near_the_window_is_counted_too():
    chat = Chat(models=SMALL)
    chat.upstream.transport.count = lambda body: 900
    with pytest.raises(ChatError) as refusal:
        await chat.send("x " * 600)  # up to 600 tokens, plus 256 for the answer: past 80% of 1,000
    assert refusal.value.kind is ErrorKind.CONTEXT_TOO_LONG and chat.requests == []
