"""Spend guards: message rates per owner and per address, daily token budgets reserved before a
request is sent, and the input size. The quota's rules are checked on every kind of counters:
in memory, and in the store on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from chat import ChatError, ErrorKind, Settings, Status
from chat.limits import Caller, Counters, Limit, MemoryCounters, Quota, QuotaRules, worst_case_tokens
from chat.store import Store
from tests.conftest import Chat, make_settings, write_pdf
from tests.upstream import TEST_KEY, Failure, text_reply

ANN = Caller("visitor:ann", "192.0.2.1")
BOB = Caller("visitor:bob", "192.0.2.1")  # ann's neighbour: the same address
CAROL = Caller("visitor:carol", "198.51.100.7")


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeCalendar:
    """A date that changes only when a test says so."""

    def __init__(self) -> None:
        self.today = dt.date(2026, 11, 24)

    def __call__(self) -> dt.date:
        return self.today


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def counters(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Counters]:
    """Empty counters: in memory, or in a store on SQLite or PostgreSQL."""
    if request.param == "memory":
        yield MemoryCounters()
        return
    if request.param == "sqlite":
        url, name, cluster = f"sqlite:///{tmp_path / 'chats.db'}", None, None
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        name = await cluster.create_database()
        url = cluster.url(name)
    store = await Store.open(url)
    try:
        yield store
    finally:
        await store.close()
        if cluster is not None:
            await cluster.drop_database(name)


def quota(
    counters: Counters, clock: FakeClock | None = None, calendar: FakeCalendar | None = None, **rules: int
) -> Quota:
    """A quota over these counters with only the rules given turned on."""
    limits = {"per_minute": 0, "per_address": 0, "daily_tokens": 0, "owner_daily_tokens": 0, **rules}
    return Quota(QuotaRules(**limits), counters, clock=clock or FakeClock(), today=calendar or FakeCalendar())


async def refusal(call: object) -> ChatError:
    with pytest.raises(ChatError) as caught:
        await call  # type: ignore[misc]
    return caught.value


# Message rates


async def test_an_owner_may_send_that_many_messages_a_minute(counters):
    limits = quota(counters, per_minute=3)
    for _ in range(3):
        await limits.admit(ANN)
    error = await refusal(limits.admit(ANN))
    assert error.kind is ErrorKind.RATE_LIMITED
    assert "at most 3 messages a minute" in error.message and "nothing was sent" in error.message


async def test_a_rate_refusal_says_how_many_seconds_to_wait(counters):
    clock = FakeClock()
    limits = quota(counters, clock, per_minute=1)
    await limits.admit(ANN)
    clock.now += 45
    error = await refusal(limits.admit(ANN))
    assert error.facts["retry_after"] == 15 and "Try again in 15 seconds" in error.message


async def test_the_rate_window_slides(counters):
    clock = FakeClock()
    limits = quota(counters, clock, per_minute=2)
    await limits.admit(ANN)
    clock.now += 30
    await limits.admit(ANN)
    clock.now += 31  # the first message is now more than a minute old
    await limits.admit(ANN)
    await refusal(limits.admit(ANN))


async def test_each_owner_has_a_rate_of_its_own(counters):
    limits = quota(counters, per_minute=1)
    await limits.admit(ANN)
    await limits.admit(CAROL)
    await refusal(limits.admit(ANN))


async def test_owners_on_one_address_share_its_rate(counters):
    limits = quota(counters, per_minute=5, per_address=2)
    await limits.admit(ANN)
    await limits.admit(BOB)
    error = await refusal(limits.admit(Caller("visitor:new-every-time", ANN.address)))
    assert error.facts["scope"] == "address" and "your network address has sent 2 messages" in error.message
    await limits.admit(CAROL)  # another address is not held up


async def test_a_refused_message_is_not_counted(counters):
    clock = FakeClock()
    limits = quota(counters, clock, per_minute=3, per_address=1)
    await limits.admit(ANN)
    await refusal(limits.admit(ANN))  # over the address's rate: not counted for ann either
    clock.now += 61
    await limits.admit(ANN)
    await refusal(limits.admit(ANN))


async def test_a_rate_of_zero_is_off(counters):
    limits = quota(counters)
    for _ in range(50):
        await limits.admit(ANN)


# Token budgets


async def test_a_reservation_is_refused_when_it_could_take_the_day_past_the_budget(counters):
    limits = quota(counters, daily_tokens=100)
    await limits.reserve(ANN, 60)
    error = await refusal(limits.reserve(CAROL, 41))
    assert error.kind is ErrorKind.BUDGET_SPENT
    assert (
        "up to 41 tokens, more than is left of this app's budget for today (40 of 100 tokens)"
        in error.message
    )
    assert "nothing was sent" in error.message


async def test_settling_gives_back_what_a_reservation_did_not_use(counters):
    limits = quota(counters, daily_tokens=100)
    held = await limits.reserve(ANN, 90)
    await refusal(limits.reserve(ANN, 20))
    await limits.settle(held, 30)
    await limits.reserve(ANN, 70)  # 30 spent + 70 = the whole budget
    error = await refusal(limits.reserve(ANN, 1))
    assert "this app's budget for today (100 tokens) is used up" in error.message.lower()


async def test_settling_charges_more_than_was_reserved_when_the_api_counted_more(counters):
    limits = quota(counters, daily_tokens=100)
    held = await limits.reserve(ANN, 10)
    await limits.settle(held, 95)
    await refusal(limits.reserve(ANN, 6))


async def test_an_owner_budget_holds_beside_the_app_budget(counters):
    limits = quota(counters, daily_tokens=1000, owner_daily_tokens=100)
    await limits.reserve(ANN, 100)
    error = await refusal(limits.reserve(ANN, 1))
    assert error.facts["scope"] == "owner" and "your own budget" in error.message.lower()
    await limits.reserve(CAROL, 100)  # the app's budget still has room for others


async def test_a_refused_reservation_holds_nothing_in_any_budget(counters):
    limits = quota(counters, daily_tokens=1000, owner_daily_tokens=600)
    await refusal(limits.reserve(ANN, 700))  # over ann's own budget: not taken from the app's either
    await limits.reserve(CAROL, 600)
    await limits.reserve(BOB, 400)


async def test_the_budget_starts_again_the_next_day(counters):
    calendar = FakeCalendar()
    limits = quota(counters, calendar=calendar, daily_tokens=10)
    await limits.reserve(ANN, 10)
    await refusal(limits.reserve(ANN, 1))
    calendar.today += dt.timedelta(days=1)
    await limits.reserve(ANN, 10)


async def test_a_reservation_settles_on_its_own_day_after_midnight(counters):
    calendar = FakeCalendar()
    limits = quota(counters, calendar=calendar, daily_tokens=100)
    held = await limits.reserve(ANN, 100)
    calendar.today += dt.timedelta(days=1)
    await limits.settle(held, 10)  # yesterday's count drops; today's is untouched
    await limits.reserve(ANN, 100)


async def test_concurrent_reservations_never_take_the_day_past_the_budget(counters):
    limits = quota(counters, daily_tokens=1000)
    results = await asyncio.gather(
        *(limits.reserve(Caller(f"visitor:{n}"), 104) for n in range(40)), return_exceptions=True
    )
    held = [r for r in results if not isinstance(r, BaseException)]
    assert len(held) == 9  # 9 x 104 = 936; a tenth would make 1040
    assert all(
        isinstance(r, ChatError) and r.kind is ErrorKind.BUDGET_SPENT for r in results if r not in held
    )


async def test_a_budget_of_zero_is_off(counters):
    limits = quota(counters)
    await limits.reserve(ANN, 10**12)


# Worst cases


def test_the_worst_case_is_max_tokens_plus_a_bound_on_the_input():
    request = {"model": "m", "max_tokens": 1000, "messages": [{"role": "user", "content": "x" * 400}]}
    assert 1000 + 200 <= worst_case_tokens(request) <= 1000 + 260


def test_the_worst_case_counts_an_image_at_the_most_an_image_costs():
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "QUJD" * 10_000},
    }
    request = {"max_tokens": 10, "messages": [{"role": "user", "content": [image]}]}
    assert 4_800 <= worst_case_tokens(request) < 5_000  # not the 40 KB of base64


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


async def test_a_message_over_the_rate_fails_when_it_starts_and_sends_nothing():
    chat = Chat(text_reply("one"), text_reply("two"), settings=guarded(rate_limit_per_minute=2))
    await chat.send("a")
    await chat.send("b")
    with pytest.raises(ChatError, match="at most 2 messages a minute"):
        await chat.send("c")
    assert len(chat.requests) == 2
    assert [e.status for e in chat.conversation.exchanges] == [
        Status.COMPLETE,
        Status.COMPLETE,
        Status.FAILED,
    ]
    assert chat.conversation.exchanges[2].error.kind is ErrorKind.RATE_LIMITED
    assert [m["content"] for m in chat.messages if m["role"] == "user"] == ["a", "b"]


async def test_every_conversation_of_a_caller_shares_its_rate():
    chat = Chat(text_reply("one"), text_reply("two"), settings=guarded(rate_limit_per_minute=1))
    await chat.send("a")
    with pytest.raises(ChatError, match="at most 1 messages a minute"):
        async with chat.service.stream_reply(chat.service.conversation(), "b") as reply:
            await reply.collect()
    assert len(chat.requests) == 1


async def test_a_complete_reply_settles_on_its_usage():
    counters = MemoryCounters()
    chat = Chat(text_reply("a", "b", "c"), quota=Quota(QuotaRules(daily_tokens=1000), counters))
    await chat.send("hi")
    assert counters.spent("app", dt.datetime.now(dt.UTC).date().isoformat()) == 1 + 3  # the scripted usage


async def test_a_stopped_reply_settles_on_an_estimate():
    counters = MemoryCounters()
    chat = Chat(text_reply("x" * 40, "never"), quota=Quota(QuotaRules(daily_tokens=10_000), counters))
    async with chat.stream("hi") as reply:
        async for _ in reply:
            break
    assert 10 <= counters.spent("app", dt.datetime.now(dt.UTC).date().isoformat()) < 256


async def test_a_reply_that_never_started_gives_its_whole_reservation_back():
    counters = MemoryCounters()
    chat = Chat(
        Failure(529, "overloaded_error", "Overloaded"), quota=Quota(QuotaRules(daily_tokens=10_000), counters)
    )
    with pytest.raises(ChatError):
        await chat.send("hi")
    assert counters.spent("app", dt.datetime.now(dt.UTC).date().isoformat()) == 0


async def test_max_tokens_over_the_configured_limit_is_capped_before_sending():
    chat = Chat(text_reply("ok"), settings=guarded())  # CHAT_MAX_TOKENS=256
    from chat import TurnOptions

    await chat.send("hi", options=TurnOptions(model="claude-sonnet-5-5", max_tokens=1_000_000))
    assert chat.requests[0]["max_tokens"] == 256


async def test_the_store_forgets_earlier_days_and_idle_scopes(store):
    await store.add_tokens("2026-11-20", [Limit("app", 100)], 5)
    await store.add_tokens("2026-11-24", [Limit("app", 100)], 7)
    await store.take_events([Limit("address:192.0.2.1", 5)], now=1000.0)
    await store.take_events([Limit("address:198.51.100.7", 5)], now=5000.0)
    await store.forget_counts("2026-11-23", idle_since=4000.0)
    assert await store.spent("app", "2026-11-20") == 0 and await store.spent("app", "2026-11-24") == 7
    assert await column(store, "SELECT scope FROM rate_scopes") == ["address:198.51.100.7"]
    assert await column(store, "SELECT scope FROM rate_events") == ["address:198.51.100.7"]


async def column(store: Store, sql: str) -> list[object]:
    async with store._engine.connect() as conn:  # past the store's own methods: what is really kept
        return list((await conn.execute(text(sql))).scalars())


def test_the_worst_case_counts_each_pdf_page_at_the_most_a_page_costs(tmp_path):
    pdf = base64.b64encode(write_pdf(tmp_path / "three.pdf", pages=3).read_bytes()).decode("ascii")
    document = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
    }
    request = {"max_tokens": 10, "messages": [{"role": "user", "content": [document]}]}
    assert 3 * 8_000 <= worst_case_tokens(request) < 3 * 8_000 + 200
