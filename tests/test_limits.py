"""Spend guards: the per-session message rate, the per-process daily token budget, the input size."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from chat import ChatError, ChatSession, Settings
from chat.limits import RateLimit, TokenBudget, estimate_tokens
from tests.conftest import Scripted, ScriptedClient


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


async def drain(session: ChatSession, message: str) -> str:
    async with session.stream_reply(message) as reply:
        return await reply.collect()


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


def test_a_fresh_rate_limit_has_nothing_counted():
    limit = RateLimit(1, FakeClock())
    limit.admit()
    limit.fresh().admit()


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


# Through the session


async def test_a_message_over_the_size_limit_is_refused_and_nothing_is_sent():
    client = ScriptedClient()
    session = ChatSession(client, Settings(max_input_chars=10))
    with pytest.raises(ChatError, match="11 characters long; the limit is 10"):
        session.stream_reply("x" * 11)
    assert client.requests == [] and session.turns == []


async def test_a_message_at_the_size_limit_is_sent():
    client = ScriptedClient(Scripted(["ok"]))
    assert await drain(ChatSession(client, Settings(max_input_chars=10)), "x" * 10) == "ok"


async def test_a_message_that_is_not_text_is_refused():
    with pytest.raises(ChatError, match="must be text"):
        ChatSession(ScriptedClient(), Settings()).stream_reply(42)  # type: ignore[arg-type]


async def test_the_session_refuses_messages_over_its_rate_and_sends_nothing():
    client = ScriptedClient(Scripted(["one"]), Scripted(["two"]))
    session = ChatSession(client, Settings(), rate_limit=RateLimit(2, FakeClock()))
    await drain(session, "a")
    await drain(session, "b")
    with pytest.raises(ChatError, match="at most 2 messages a minute"):
        session.stream_reply("c")
    assert len(client.requests) == 2 and len(session.turns) == 2


async def test_each_copy_of_a_session_has_its_own_rate_limit():
    template = ChatSession(
        ScriptedClient(Scripted(["one"]), Scripted(["two"])), Settings(rate_limit_per_minute=1)
    )
    first, second = copy.deepcopy(template), copy.deepcopy(template)
    await drain(first, "a")
    assert await drain(second, "b") == "two"


async def test_a_complete_reply_charges_the_budget_its_usage():
    budget = TokenBudget(1000, FakeCalendar())
    session = ChatSession(ScriptedClient(Scripted(["a", "b", "c"])), Settings(), budget=budget)
    await drain(session, "hi")
    assert budget.spent == 1 + 3  # the scripted usage: 1 input token, one output token a chunk


async def test_a_stopped_reply_charges_an_estimate():
    budget = TokenBudget(1000, FakeCalendar())
    session = ChatSession(ScriptedClient(Scripted(["x" * 40, "never"])), Settings(), budget=budget)
    async with session.stream_reply("hi") as reply:
        async for _ in reply:
            break
    assert budget.spent >= estimate_tokens("x" * 40)


async def test_a_reply_that_never_started_charges_nothing():
    budget = TokenBudget(1000, FakeCalendar())
    session = ChatSession(
        ScriptedClient(Scripted([], fail_with=RuntimeError("down"))), Settings(), budget=budget
    )
    with pytest.raises(ChatError):
        await drain(session, "hi")
    assert budget.spent == 0


async def test_every_copy_of_a_session_shares_the_budget():
    template = ChatSession(ScriptedClient(Scripted(["spent"])), Settings(daily_token_budget=1))
    first, second = copy.deepcopy(template), copy.deepcopy(template)
    await drain(first, "a")
    with pytest.raises(ChatError, match="token budget"):
        second.stream_reply("b")
    assert first.budget is second.budget is template.budget
