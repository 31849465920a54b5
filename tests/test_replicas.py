"""Replicas sharing one PostgreSQL database: Stops, followers and gone replicas, across processes.

Each replica is a `Library` opened on the same real PostgreSQL database, with its own store
connections, its own advisory lock and its own LISTEN connection, as a process of its own has:
what one replica learns of another's answers comes only through the database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chat import ChatService, Status
from chat.errors import ChatError, ErrorKind
from chat.exchange import Exchange, Prompt
from chat.files import FileStore
from chat.library import Library, RemoteAnswer
from chat.peers import PAYLOAD_LIMIT, News, parse, payloads
from chat.store import Store
from chat.wire import Response
from tests.conftest import make_settings
from tests.upstream import TEST_KEY, InProcess, replies, text_reply

WAIT = 10.0
WORDS = [f"w{n} " for n in range(40)]


def slow(delay: float = 0.05) -> Response:
    """An answer of 40 words, one delta each, `delay` seconds apart (2 s at the default)."""
    return text_reply(*WORDS, delay=delay)


@pytest.fixture
async def replica(postgres_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Open a replica (a library with its own scripted upstream) on the test's database."""
    opened: list[Library] = []

    async def open_replica(name: str, *responses: Response) -> Library:
        upstream = InProcess(replies(*responses))
        service = ChatService(
            upstream.client, make_settings(api_key=TEST_KEY, max_tokens=256), files=FileStore()
        )
        library = await Library.open(service, postgres_url, name, save_interval=0.05, sweep_interval=0.1)
        opened.append(library)
        return library

    yield open_replica
    for library in opened:
        await asyncio.wait_for(library.close(), WAIT)
        await library.store.close()


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait, at most `timeout` seconds, for the condition to hold."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def stored(store: Store, conversation_id: str) -> list[Exchange]:
    return await store.exchanges("ann", conversation_id)


async def left_streaming(url: str, text: str = "Half an ans") -> str:
    """A conversation whose answer a replica was streaming when it went away: its id."""
    gone = await Store.open(url, "gone-replica")
    made = await gone.create("ann", "t")
    response = {"type": "message", "role": "assistant", "content": [{"type": "text", "text": text}]}
    exchange = Exchange(Prompt("hi"), {"model": "m"}, status=Status.STREAMING, response=response)
    await gone.save("ann", made.id, 0, exchange)
    await gone.close()  # its connections close, and its lock with them, as when a process dies
    return made.id


# --- the store -----------------------------------------------------------------------------------


async def test_an_answer_a_running_replica_streams_is_left_streaming(postgres_url: str) -> None:
    first, second = await Store.open(postgres_url, "first"), await Store.open(postgres_url, "second")
    try:
        made = await first.create("ann", "t")
        await first.save("ann", made.id, 0, Exchange(Prompt("hi"), {"model": "m"}, status=Status.STREAMING))
        assert await second.stop_orphans() == []
        still = await second.exchange_at("ann", made.id, 0)
        assert still is not None and still.status is Status.STREAMING
        reopened = await Store.open(postgres_url, "third")  # a replica starting does not stop it either
        assert reopened.interrupted_on_open == 0
        await reopened.close()
    finally:
        await first.close()
        await second.close()


async def test_an_answer_of_a_replica_that_went_away_is_stopped_keeping_its_text(postgres_url: str) -> None:
    conversation_id = await left_streaming(postgres_url)
    survivor = await Store.open(postgres_url, "survivor")
    try:
        (answer,) = await stored(survivor, conversation_id)
        assert survivor.interrupted_on_open == 1
        assert answer.status is Status.STOPPED and answer.text == "Half an ans"
        assert answer.error is not None and answer.error.kind is ErrorKind.INTERRUPTED
    finally:
        await survivor.close()


# --- the library -----------------------------------------------------------------------------------


async def test_a_stop_sent_to_another_replica_stops_the_answer_where_it_streams(replica: Any) -> None:
    streaming, other = await replica("streaming", slow()), await replica("other")
    conversation_id = (await streaming.new("ann", "t")).id
    live = await streaming.ask("ann", conversation_id, "hi")
    await until(lambda: len(live.text) > 0)
    assert await other.stop("ann", conversation_id)
    assert live.done and live.exchange.status is Status.STOPPED
    (saved,) = await stored(other.store, conversation_id)
    assert saved.status is Status.STOPPED and 0 < len(saved.text) < len("".join(WORDS))


async def test_a_stop_for_another_owners_conversation_stops_nothing(replica: Any) -> None:
    streaming, other = await replica("streaming", slow(0.02)), await replica("other")
    conversation_id = (await streaming.new("ann", "t")).id
    live = await streaming.ask("ann", conversation_id, "hi")
    assert not await other.stop("bob", conversation_id)
    assert (await asyncio.wait_for(live.wait(), WAIT)).status is Status.COMPLETE


async def test_another_replica_follows_a_live_answer_as_it_is_saved_to_its_end(replica: Any) -> None:
    streaming, other = await replica("streaming", slow()), await replica("other")
    conversation_id = (await streaming.new("ann", "t")).id
    live = await streaming.ask("ann", conversation_id, "hi")
    await until(lambda: len(live.text) > 0)
    follower = await other.answering("ann", conversation_id)
    assert isinstance(follower, RemoteAnswer)

    async def follow() -> list[str]:
        return [follower.exchange.text async for _ in follower.changes()]

    seen = await asyncio.wait_for(follow(), WAIT)
    assert len(set(seen)) >= 3  # it grew in steps, as the streaming replica saved it
    assert follower.exchange.status is Status.COMPLETE and seen[-1] == "".join(WORDS)


async def test_a_replica_refuses_a_message_while_another_replica_answers_there(replica: Any) -> None:
    streaming, other = await replica("streaming", slow()), await replica("other", slow())
    conversation_id = (await streaming.new("ann", "t")).id
    live = await streaming.ask("ann", conversation_id, "hi")
    await until(lambda: len(live.text) > 0)
    with pytest.raises(ChatError) as caught:
        await other.ask("ann", conversation_id, "me too")
    assert caught.value.kind is ErrorKind.VISITOR_BUSY


async def test_a_replica_sees_what_another_replica_added_to_a_conversation_it_holds(replica: Any) -> None:
    first, second = await replica("first", text_reply("one")), await replica("second", text_reply("two"))
    conversation_id = (await first.new("ann", "t")).id
    await (await first.ask("ann", conversation_id, "a")).wait()
    held = await second.conversation("ann", conversation_id)
    assert len(held.exchanges) == 1
    await (await first.ask("ann", conversation_id, "b")).wait()

    async def exchanges_second_sees() -> int:
        return len((await second.conversation("ann", conversation_id)).exchanges)

    for _ in range(200):
        if await exchanges_second_sees() == 2:
            break
        await asyncio.sleep(0.02)
    assert await exchanges_second_sees() == 2


async def test_a_conversation_a_gone_replica_left_streaming_is_stopped_and_goes_on(
    replica: Any, postgres_url: str
) -> None:
    survivor = await replica("survivor", text_reply("Answered here."))
    conversation_id = await left_streaming(postgres_url)
    live = await survivor.ask("ann", conversation_id, "and then?")
    assert (await asyncio.wait_for(live.wait(), WAIT)).text == "Answered here."
    first, second = await stored(survivor.store, conversation_id)
    assert first.status is Status.STOPPED and first.text == "Half an ans"
    assert second.status is Status.COMPLETE


async def test_a_follower_sees_the_answer_end_when_its_replica_goes_away(
    replica: Any, postgres_url: str
) -> None:
    follower_side = await replica("follower")
    streaming = await Store.open(postgres_url, "about-to-go")
    made = await streaming.create("ann", "t")
    await streaming.save("ann", made.id, 0, Exchange(Prompt("hi"), {"model": "m"}, status=Status.STREAMING))
    follower = await follower_side.answering("ann", made.id)
    assert isinstance(follower, RemoteAnswer)
    await streaming.close()  # the streaming replica goes away; the follower's replica sweeps
    ended = await asyncio.wait_for(follower.wait(), WAIT)
    assert ended.status is Status.STOPPED and ended.error is not None


# --- the news ------------------------------------------------------------------------------------


def test_news_of_many_conversations_is_split_under_the_payload_limit() -> None:
    ids = [f"conversation-{n:05d}-abcdefghij" for n in range(1000)]
    sent = payloads(News.CHANGED, ids, "replica-1/42/abcd")
    assert len(sent) > 1 and all(len(p.encode()) < PAYLOAD_LIMIT for p in sent)
    heard = [parse(p) for p in sent]
    assert [c for notice in heard if notice for c in notice.conversations] == ids


def test_a_notification_that_is_not_ours_is_ignored() -> None:
    assert parse("hello") is None and parse(json.dumps({"news": "dance"})) is None
