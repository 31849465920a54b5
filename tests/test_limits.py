"""Spend guards: the per-conversation message rate, the per-process daily token budget, the input size."""

from __future__ import annotations

import datetime as dt

import pytest

from chat import ChatError, ErrorKind, Settings, Status
from chat.limits import RateLimit, TokenBudget
from chat.usage import estimate_tokens
from tests.conftest import Chat, make_settings
from tests.upstream import TEST_KEY, Failure, text_reply


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeCalendar:
    """A date that changes only when a test says so."""

    def __init__(self) -> None:
        self.today = dt.date(2026, 11, 24)

    def __call__(self) -> dt.date:
        return self.today


# Rate limit


def test_the_rate_limit_admits_that_many_messages_a_minute():
    limit = RateLimit(3, FakeClock())
    for _ in range(3):
        limit.admit()
    with pytest.raises(ChatError, match="at most 3 messages a minute"):
        limit.admit()


def test_a_refusal_says_how_many_seconds_to_wait():
    clock = FakeClock()
    limit = RateLimit(1, clock)
    limit.admit()
    clock.now += 45
    with pytest.raises(ChatError, match="Try again in 15 seconds; nothing was sent"):
        limit.admit()


def test_the_rate_limit_window_slides():
    clock = FakeClock()
    limit = RateLimit(2, clock)
    limit.admit()
    clock.now += 30
    limit.admit()
    clock.now += 30  # the first message is now a minute old
    limit.admit()
    with pytest.raises(ChatError):
        limit.admit()


def test_a_rate_limit_of_zero_is_off():
    limit = RateLimit(0, FakeClock())
    for _ in range(1000):
        limit.admit()


# Token budget


def test_the_budget_refuses_once_the_day_is_spent():
    budget = TokenBudget(100, FakeCalendar())
    budget.charge(60)
    budget.check()
    budget.charge(40)
    with pytest.raises(ChatError, match=r"token budget for today \(100 tokens\).*midnight UTC"):
        budget.check()


def test_the_budget_starts_again_the_next_day():
    calendar = FakeCalendar()
    budget = TokenBudget(10, calendar)
    budget.charge(10)
    calendar.today += dt.timedelta(days=1)
    budget.check()
    assert budget.spent == 0


def test_a_budget_of_zero_is_off():
    budget = TokenBudget(0, FakeCalendar())
    budget.charge(10**9)
    budget.check()


def test_estimates_count_about_four_characters_a_token():
    assert (estimate_tokens(""), estimate_tokens("abcd"), estimate_tokens("abcde")) == (0, 1, 2)


# Through the service


def guarded(**guards: int) -> Settings:
    """Settings with these guards (max_input_chars=..., rate_limit_per_minute=...)."""
    return make_settings(api_key=TEST_KEY, max_tokens=256, **guards)


async def test_a_message_over_the_size_limit_is_refused_and_nothing_is_sent():
    chat = Chat(settings=guarded(max_input_chars=10))
    with pytest.raises(ChatError, match="11 characters long; the limit is 10"):
        chat.stream("x" * 11)
    assert chat.requests == [] and chat.messages == []
    [refused] = chat.conversation.exchanges  # recorded in its place, as failed
    assert (refused.status, refused.error.kind) == (Status.FAILED, ErrorKind.REFUSED)


async def test_a_message_at_the_size_limit_is_sent():
    chat = Chat(text_reply("ok"), settings=guarded(max_input_chars=10))
    assert (await chat.send("x" * 10)).text == "ok"


async def test_a_message_that_is_not_text_is_refused():
    with pytest.raises(ChatError, match="must be text"):
        Chat().stream(42)


async def test_the_conversation_refuses_messages_over_its_rate_and_sends_nothing():
    chat = Chat(
        text_reply("one"), text_reply("two"), settings=guarded(rate_limit_per_minute=2), clock=FakeClock()
    )
    await chat.send("a")
    await chat.send("b")
    with pytest.raises(ChatError, match="at most 2 messages a minute"):
        chat.stream("c")
    assert len(chat.requests) == 2
    assert [e.status for e in chat.conversation.exchanges] == [
        Status.COMPLETE,
        Status.COMPLETE,
        Status.FAILED,
    ]
    assert chat.conversation.exchanges[2].error.kind is ErrorKind.RATE_LIMITED
    assert [m["content"] for m in chat.messages if m["role"] == "user"] == ["a", "b"]


async def test_each_conversation_has_its_own_rate_limit():
    chat = Chat(text_reply("one"), text_reply("two"), settings=guarded(rate_limit_per_minute=1))
    first, second = chat.conversation, chat.service.conversation()
    async with chat.service.stream_reply(first, "a") as reply:
        await reply.collect()
    async with chat.service.stream_reply(second, "b") as reply:
        assert await reply.collect() == "two"


async def test_a_complete_reply_charges_the_budget_its_usage():
    budget = TokenBudget(1000, FakeCalendar())
    chat = Chat(text_reply("a", "b", "c"), budget=budget)
    await chat.send("hi")
    assert budget.spent == 1 + 3  # the scripted usage: 1 input token, one output token a word


async def test_a_stopped_reply_charges_an_estimate():
    budget = TokenBudget(1000, FakeCalendar())
    chat = Chat(text_reply("x" * 40, "never"), budget=budget)
    async with chat.stream("hi") as reply:
        async for _ in reply:
            break
    assert budget.spent >= estimate_tokens("x" * 40)


async def test_a_reply_that_never_started_charges_nothing():
    budget = TokenBudget(1000, FakeCalendar())
    chat = Chat(Failure(529, "overloaded_error", "Overloaded"), budget=budget)
    with pytest.raises(ChatError):
        await chat.send("hi")
    assert budget.spent == 0


async def test_every_conversation_of_a_service_shares_the_budget():
    chat = Chat(text_reply("spent"), settings=guarded(daily_token_budget=1))
    first, second = chat.conversation, chat.service.conversation()
    async with chat.service.stream_reply(first, "a") as reply:
        await reply.collect()
    with pytest.raises(ChatError, match="token budget"):
        chat.service.stream_reply(second, "b")
    assert len(chat.requests) == 1
    assert second.exchanges[0].error.kind is ErrorKind.BUDGET_SPENT
