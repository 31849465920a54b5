"""The library: server-side conversations whose answers outlive the tab, on SQLite and PostgreSQL.

Every answer comes through the real SDK from the in-process scripted upstream, and every
conversation lives in a real store; each behaviour runs on both databases.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from chat import ChatService, Status
from chat.errors import ChatError, ErrorKind
from chat.files import FileStore
from chat.library import Library, LiveAnswer
from chat.store import Store, title_for
from chat.wire import Response
from tests.conftest import make_settings, write_image
from tests.upstream import TEST_KEY, InProcess, cut_mid_stream, replies, text_reply

WAIT = 10.0  # the most any test waits for an answer to end

WORDS = [f"w{n} " for n in range(30)]
WHOLE = "".join(WORDS)


def paced(delay: float = 0.03, words: list[str] = WORDS) -> Response:
    """An answer of these words, one delta each, `delay` seconds apart."""
    return text_reply(*words, delay=delay)


class Shelf:
    """A library over a store and a scripted upstream served in process."""

    def __init__(self, store: Store, *responses: Response, **options: Any) -> None:
        self.store = store
        self.upstream = InProcess(replies(*responses))
        settings = make_settings(api_key=TEST_KEY, max_tokens=256)
        self.service = ChatService(self.upstream.client, settings, files=FileStore())
        self.library = Library(self.service, store, **options)

    async def new(self, owner: str = "ann") -> str:
        return (await self.library.new(owner, "Untitled")).id


# --- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture
async def shelf(store: Store) -> AsyncIterator[Callable[..., Shelf]]:
    """Make a Shelf on the test's store; every library made is closed at the end."""
    made: list[Shelf] = []

    def make(*responses: Response, **options: Any) -> Shelf:
        made.append(Shelf(store, *responses, **options))
        return made[-1]

    yield make
    for each in made:
        await asyncio.wait_for(each.library.close(), WAIT)


async def stored_statuses(url: str) -> list[str]:
    """The status column of every stored exchange, by position, read past the store."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text("SELECT status FROM exchanges ORDER BY position"))
            return list(result.scalars())
    finally:
        await engine.dispose()


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait, at most `timeout` seconds, for the condition to hold."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def texts_seen(live: LiveAnswer) -> list[str]:
    """Follow the answer to its end; the text at each change seen."""

    async def follow() -> list[str]:
        return [live.text async for _ in live.changes()]

    return await asyncio.wait_for(follow(), WAIT)


async def ended(live: LiveAnswer) -> None:
    await asyncio.wait_for(live.wait(), WAIT)


async def kind_of(call: Awaitable[Any]) -> ErrorKind:
    with pytest.raises(ChatError) as caught:
        await call
    return caught.value.kind


# --- answers outlive their watchers ----------------------------------------------------------------


async def test_an_answer_finishes_and_is_saved_after_every_watcher_left(shelf, store):
    made = shelf(paced())
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hi")

    async def leaves_after_the_first_text() -> None:
        async for _ in live.changes():
            if live.text:
                break

    cancelled = asyncio.create_task(texts_seen(live))
    await asyncio.wait_for(leaves_after_the_first_text(), WAIT)
    cancelled.cancel()
    await asyncio.wait({cancelled}, timeout=WAIT)
    assert not live.done  # every watcher has gone, the answer has not

    await ended(live)
    saved = await store.exchanges("ann", conversation_id)
    assert [(e.status, e.text) for e in saved] == [(Status.COMPLETE, WHOLE)]
    call = made.upstream.calls[0]
    assert len(made.upstream.calls) == 1 and call.client_left_at is None and call.finished_at is not None


async def test_a_watcher_joining_mid_answer_sees_the_text_so_far_then_the_rest(shelf):
    made = shelf(paced())
    conversation_id = await made.new()
    first = asyncio.create_task(texts_seen(await made.library.ask("ann", conversation_id, "hi")))
    live = made.library.live("ann", conversation_id)
    assert live is not None
    await until(lambda: len(live.text) > len("w0 w1 w2 "))

    rejoined = made.library.live("ann", conversation_id)  # a reloaded tab finds it still streaming
    assert rejoined is live
    seen = await texts_seen(rejoined)
    assert len(seen[0]) > len("w0 w1 w2 ") and seen[0] != WHOLE and WHOLE.startswith(seen[0])
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(seen))
    assert seen[-1] == WHOLE and (await first)[-1] == WHOLE
    assert len(made.upstream.requests) == 1


async def test_a_watcher_joining_after_the_end_sees_the_whole_answer_once(shelf):
    made = shelf(paced(0.0))
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hi")
    await ended(live)
    assert await texts_seen(live) == [WHOLE]


async def test_many_watchers_follow_one_answer_to_the_same_end(shelf):
    made = shelf(paced(0.01))
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hi")
    seen = await asyncio.gather(*(texts_seen(live) for _ in range(5)))
    assert [texts[-1] for texts in seen] == [WHOLE] * 5
    assert len(made.upstream.requests) == 1


# --- saving as it streams --------------------------------------------------------------------------


async def test_the_new_exchange_is_saved_as_streaming_before_any_text_arrives(shelf, store, database_url):
    made = shelf(paced(delay=0.5))
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hello there")
    async with asyncio.timeout(WAIT):
        while await stored_statuses(database_url) != ["streaming"]:
            await asyncio.sleep(0.01)
    assert live.text == ""
    assert [e.prompt.text for e in await store.exchanges("ann", conversation_id)] == ["hello there"]


async def test_the_partial_answer_is_in_the_store_within_a_second_then_the_whole(shelf, store, database_url):
    made = shelf(paced(0.05))  # 1.5 s of answer, saved every second (the default)
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hi")

    async def partial_in_store() -> str:
        while True:
            saved = await store.exchanges("ann", conversation_id)
            if saved and saved[0].text:
                return saved[0].text
            await asyncio.sleep(0.02)

    partial = await asyncio.wait_for(partial_in_store(), 1.3)
    assert WHOLE.startswith(partial) and partial != WHOLE
    assert not live.done and await stored_statuses(database_url) == ["streaming"]

    await ended(live)
    saved = await store.exchanges("ann", conversation_id)
    assert [(e.status, e.text) for e in saved] == [(Status.COMPLETE, WHOLE)]
    assert await stored_statuses(database_url) == ["complete"]


async def test_an_answer_cut_mid_stream_is_saved_failed_with_its_partial_text(shelf, store):
    made = shelf(cut_mid_stream("Half an "))
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hi")
    await ended(live)
    (saved,) = await store.exchanges("ann", conversation_id)
    assert saved.status is Status.FAILED and saved.text == "Half an "
    assert saved.error is not None and saved.error.kind is ErrorKind.INTERRUPTED


# --- stopping --------------------------------------------------------------------------------------


async def test_stop_closes_the_upstream_and_saves_a_stopped_exchange_with_the_partial_text(shelf, store):
    made = shelf(paced())
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hi")
    await until(lambda: len(live.text) > len("w0 w1 "))

    assert await asyncio.wait_for(made.library.stop("ann", conversation_id), WAIT) is True
    assert made.upstream.calls[0].client_left_at is not None
    assert live.done and live.exchange.status is Status.STOPPED
    assert made.library.live("ann", conversation_id) is None
    (saved,) = await store.exchanges("ann", conversation_id)
    assert saved.status is Status.STOPPED and saved.text == live.exchange.text
    assert saved.text and saved.text != WHOLE and WHOLE.startswith(saved.text)


async def test_a_partial_save_in_flight_at_stop_never_lands_over_the_end(shelf, store, monkeypatch):
    made = shelf(paced(), save_interval=0.05)
    saving, release = asyncio.Event(), asyncio.Event()
    save_partials = store.save_partials

    async def held(partials: Any) -> None:
        if not release.is_set():
            saving.set()
            await release.wait()  # a slow write, still to land when the answer has ended
        await save_partials(partials)

    monkeypatch.setattr(store, "save_partials", held)
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hi")
    await asyncio.wait_for(saving.wait(), WAIT)
    assert await asyncio.wait_for(made.library.stop("ann", conversation_id), WAIT) is True
    assert made.upstream.calls[0].client_left_at is not None  # Stop did not wait for the save
    release.set()
    await asyncio.sleep(0.2)  # the held partial save lands now, after the end
    (saved,) = await store.exchanges("ann", conversation_id)
    assert saved.status is Status.STOPPED and saved.text == live.exchange.text and saved.text


async def test_partial_saves_of_many_answers_go_in_one_write_a_second(shelf, store, monkeypatch):
    made = shelf(paced(0.05), paced(0.05), paced(0.05))
    writes: list[int] = []
    save_partials = store.save_partials

    async def counted(partials: Any) -> None:
        writes.append(len(partials))
        await save_partials(partials)

    monkeypatch.setattr(store, "save_partials", counted)
    answers = [await made.library.ask("ann", await made.new(), "hi") for _ in range(2)]
    answers.append(await made.library.ask("bob", await made.new("bob"), "hi"))
    for live in answers:
        await ended(live)
    assert writes and writes[0] == 3 and len(writes) <= 2  # 1.5 s of answers: at most two writes


async def test_stop_right_after_asking_sends_nothing_and_saves_it_stopped(shelf, store):
    made = shelf(paced())
    conversation_id = await made.new()
    await made.library.ask("ann", conversation_id, "hi")
    assert await asyncio.wait_for(made.library.stop("ann", conversation_id), WAIT) is True
    (saved,) = await store.exchanges("ann", conversation_id)
    assert saved.status is Status.STOPPED and saved.text == ""
    assert made.upstream.requests == []


async def test_stop_with_no_answer_streaming_says_so(shelf):
    made = shelf()
    conversation_id = await made.new()
    assert await made.library.stop("ann", conversation_id) is False


async def test_close_stops_every_live_answer_and_saves_it(shelf, store):
    made = shelf(paced(), paced())
    conversations = [await made.new(), await made.new()]
    answers = [await made.library.ask("ann", c, "hi") for c in conversations]
    await until(lambda: all(live.text for live in answers))

    await asyncio.wait_for(made.library.close(), WAIT)
    assert all(call.client_left_at is not None for call in made.upstream.calls)
    assert all(made.library.live("ann", c) is None for c in conversations)
    for conversation_id in conversations:
        (saved,) = await store.exchanges("ann", conversation_id)
        assert saved.status is Status.STOPPED and saved.text and saved.text != WHOLE


# --- owners ----------------------------------------------------------------------------------------


async def test_another_owner_cannot_open_the_conversation(shelf):
    made = shelf()
    conversation_id = await made.new("ann")
    assert await kind_of(made.library.conversation("bob", conversation_id)) is ErrorKind.NOT_FOUND
    await made.library.conversation("ann", conversation_id)  # now in memory, still not bob's
    assert await kind_of(made.library.conversation("bob", conversation_id)) is ErrorKind.NOT_FOUND


async def test_an_unknown_conversation_is_not_found(shelf):
    made = shelf()
    assert await kind_of(made.library.conversation("ann", "nope")) is ErrorKind.NOT_FOUND
    assert await kind_of(made.library.ask("ann", "nope", "hi")) is ErrorKind.NOT_FOUND


async def test_another_owner_cannot_ask_in_the_conversation(shelf, store):
    made = shelf()
    conversation_id = await made.new("ann")
    assert await kind_of(made.library.ask("bob", conversation_id, "hi")) is ErrorKind.NOT_FOUND
    assert made.upstream.requests == [] and await store.exchanges("ann", conversation_id) == []


async def test_another_owner_can_neither_watch_nor_stop_an_answer(shelf, store):
    made = shelf(paced(0.01))
    conversation_id = await made.new("ann")
    live = await made.library.ask("ann", conversation_id, "hi")
    assert made.library.live("bob", conversation_id) is None
    assert await made.library.stop("bob", conversation_id) is False
    await ended(live)
    assert live.exchange.status is Status.COMPLETE and made.upstream.calls[0].client_left_at is None
    assert [e.status for e in await store.exchanges("ann", conversation_id)] == [Status.COMPLETE]


async def test_another_owner_cannot_cut_the_conversation(shelf, store):
    made = shelf(paced(0.0))
    conversation_id = await made.new("ann")
    await ended(await made.library.ask("ann", conversation_id, "hi"))
    assert await kind_of(made.library.keep("bob", conversation_id, 0)) is ErrorKind.NOT_FOUND
    assert len(await store.exchanges("ann", conversation_id)) == 1
    assert len((await made.library.conversation("ann", conversation_id)).exchanges) == 1


# --- refusals --------------------------------------------------------------------------------------


async def test_the_live_cap_refuses_one_more_answer_and_sends_nothing(shelf, store):
    made = shelf(paced(), paced(), max_live_per_owner=2)
    first, second, third = [await made.new() for _ in range(3)]
    await made.library.ask("ann", first, "one")
    await made.library.ask("ann", second, "two")
    assert await kind_of(made.library.ask("ann", third, "three")) is ErrorKind.VISITOR_BUSY
    await until(lambda: len(made.upstream.requests) == 2)  # the two admitted ones, sent once counted
    assert [r["messages"][-1]["content"] for r in made.upstream.requests] == ["one", "two"]
    (refused,) = await store.exchanges("ann", third)
    assert refused.status is Status.FAILED and refused.prompt.text == "three"
    assert refused.error is not None and refused.error.kind is ErrorKind.VISITOR_BUSY


async def test_the_live_cap_counts_each_owner_apart(shelf):
    made = shelf(paced(), paced(0.0), max_live_per_owner=1)
    anns, bobs = await made.new("ann"), await made.new("bob")
    await made.library.ask("ann", anns, "one")
    await ended(await made.library.ask("bob", bobs, "two"))
    assert len(made.upstream.requests) == 2


async def test_a_finished_answer_frees_its_place_under_the_cap(shelf):
    made = shelf(paced(0.0), paced(0.0), max_live_per_owner=1)
    conversation_id = await made.new()
    await ended(await made.library.ask("ann", conversation_id, "one"))
    await ended(await made.library.ask("ann", conversation_id, "two"))
    assert len(made.upstream.requests) == 2


async def test_asking_while_the_conversation_has_an_answer_coming_is_refused(shelf):
    made = shelf(paced())
    conversation_id = await made.new()
    await made.library.ask("ann", conversation_id, "one")
    assert await kind_of(made.library.ask("ann", conversation_id, "two")) is ErrorKind.VISITOR_BUSY
    await until(lambda: len(made.upstream.requests) == 1)
    assert made.upstream.requests[0]["messages"][-1]["content"] == "one"


async def test_a_refused_message_is_saved_as_a_failed_exchange(shelf, store):
    made = shelf()
    conversation_id = await made.new()
    assert await kind_of(made.library.ask("ann", conversation_id, "   ")) is ErrorKind.REFUSED
    assert made.upstream.requests == []
    (saved,) = await store.exchanges("ann", conversation_id)
    assert saved.status is Status.FAILED and saved.error is not None
    assert saved.error.kind is ErrorKind.REFUSED
    assert made.library.live("ann", conversation_id) is None


# --- conversations in memory -----------------------------------------------------------------------


async def test_two_tabs_get_the_same_conversation_object(shelf):
    made = shelf()
    conversation_id = await made.new()
    first, second = await asyncio.gather(
        made.library.conversation("ann", conversation_id), made.library.conversation("ann", conversation_id)
    )
    assert first is second is await made.library.conversation("ann", conversation_id)


async def test_a_conversation_is_loaded_from_the_store_on_first_use(shelf):
    before = shelf(text_reply("Paris."))
    conversation_id = await before.new()
    await ended(await before.library.ask("ann", conversation_id, "France?"))

    after = shelf(text_reply("Berlin."))  # a restarted app: a new library on the same store
    loaded = await after.library.conversation("ann", conversation_id)
    assert [(e.prompt.text, e.text) for e in loaded.exchanges] == [("France?", "Paris.")]
    await ended(await after.library.ask("ann", conversation_id, "Germany?"))
    assert [m["role"] for m in after.upstream.requests[0]["messages"]] == ["user", "assistant", "user"]


async def test_keep_cuts_the_conversation_in_memory_and_in_the_store(shelf, store):
    made = shelf(text_reply("one"), text_reply("two"), text_reply("three"))
    conversation_id = await made.new()
    for question in ("q1", "q2"):
        await ended(await made.library.ask("ann", conversation_id, question))
    await made.library.keep("ann", conversation_id, 1)

    conversation = await made.library.conversation("ann", conversation_id)
    assert [e.prompt.text for e in conversation.exchanges] == ["q1"]
    assert [e.prompt.text for e in await store.exchanges("ann", conversation_id)] == ["q1"]
    await ended(await made.library.ask("ann", conversation_id, "q2 again"))
    assert [e.prompt.text for e in await store.exchanges("ann", conversation_id)] == ["q1", "q2 again"]


async def test_keep_stops_an_answer_it_cuts_off(shelf, store):
    made = shelf(paced())
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hi")
    await until(lambda: bool(live.text))
    await asyncio.wait_for(made.library.keep("ann", conversation_id, 0), WAIT)
    assert live.done and made.upstream.calls[0].client_left_at is not None
    assert await store.exchanges("ann", conversation_id) == []
    assert (await made.library.conversation("ann", conversation_id)).exchanges == []


async def test_the_cache_never_evicts_a_conversation_with_a_live_answer(shelf):
    made = shelf(paced(), max_cached=1)
    streaming, other, third = await made.new(), await made.new(), await made.new()
    held = await made.library.conversation("ann", streaming)
    live = await made.library.ask("ann", streaming, "hi")
    await made.library.conversation("ann", other)
    await made.library.conversation("ann", third)
    assert await made.library.conversation("ann", streaming) is held

    await asyncio.wait_for(made.library.stop("ann", streaming), WAIT)
    assert live.done
    await made.library.conversation("ann", other)  # with nothing live, the least recent one goes
    reloaded = await made.library.conversation("ann", streaming)
    assert reloaded is not held
    assert [e.prompt.text for e in reloaded.exchanges] == ["hi"]


# --- the sidebar's actions -------------------------------------------------------------------------


async def test_ensure_makes_a_conversation_the_tab_named_and_asking_there_works(shelf, store):
    made = shelf(text_reply("Hello."))
    await made.library.ensure("ann", "tab-chosen-id-0001", "Greetings")
    await ended(await made.library.ask("ann", "tab-chosen-id-0001", "hi"))
    assert [e.text for e in await store.exchanges("ann", "tab-chosen-id-0001")] == ["Hello."]
    info = await store.get("ann", "tab-chosen-id-0001")
    assert info is not None and info.title == "Greetings"


async def test_ensure_on_another_owners_conversation_is_not_found_even_when_held_in_memory(shelf):
    made = shelf()
    conversation_id = await made.new("ann")
    await made.library.conversation("ann", conversation_id)
    assert await kind_of(made.library.ensure("bob", conversation_id, "Mine")) is ErrorKind.NOT_FOUND


async def test_a_rename_is_folded_to_one_short_line(shelf, store):
    made = shelf()
    conversation_id = await made.new()
    assert await made.library.rename("ann", conversation_id, "  Trip\n to   Rome  ") == "Trip to Rome"
    assert await made.library.rename("ann", conversation_id, "x" * 80) == "x" * 59 + "…"
    assert await kind_of(made.library.rename("ann", conversation_id, "  \n ")) is ErrorKind.REFUSED
    info = await store.get("ann", conversation_id)
    assert info is not None and info.title == "x" * 59 + "…"


async def test_deleting_a_conversation_stops_its_answer_and_forgets_it(shelf, store):
    made = shelf(paced())
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hi")
    await until(lambda: bool(live.text))
    await asyncio.wait_for(made.library.delete("ann", conversation_id), WAIT)
    assert live.done and made.upstream.calls[0].client_left_at is not None
    assert await store.get("ann", conversation_id) is None
    assert await kind_of(made.library.conversation("ann", conversation_id)) is ErrorKind.NOT_FOUND


async def test_another_owner_cannot_delete_the_conversation(shelf, store):
    made = shelf()
    conversation_id = await made.new("ann")
    assert await kind_of(made.library.delete("bob", conversation_id)) is ErrorKind.NOT_FOUND
    assert await store.get("ann", conversation_id) is not None


async def test_an_adopted_conversation_holds_the_exchanges_and_continues_from_them(shelf, store):
    before = shelf(text_reply("Paris."))
    source = await before.new()
    await ended(await before.library.ask("ann", source, "France?"))
    exchanges = await store.exchanges("ann", source)

    after = shelf(text_reply("Rome."))
    info = await after.library.adopt("bob", "Loaded", exchanges)
    await ended(await after.library.ask("bob", info.id, "Italy?"))
    assert [e.prompt.text for e in await store.exchanges("bob", info.id)] == ["France?", "Italy?"]
    assert [m["role"] for m in after.upstream.requests[0]["messages"]] == ["user", "assistant", "user"]


async def test_a_refused_message_from_the_page_is_saved_failed_in_its_place(shelf, store):
    made = shelf()
    conversation_id = await made.new()
    error = ChatError(ErrorKind.BAD_OPTIONS, "Max tokens must be a whole number.")
    await made.library.refuse("ann", conversation_id, "hi", error)
    (saved,) = await store.exchanges("ann", conversation_id)
    assert (
        saved.status is Status.FAILED
        and saved.error is not None
        and saved.error.kind is ErrorKind.BAD_OPTIONS
    )
    assert made.upstream.calls == []


# --- retention -------------------------------------------------------------------------------------


async def test_expiry_deletes_old_conversations_and_the_files_only_they_used(store, tmp_path):
    files = FileStore(tmp_path / "files")
    upstream = InProcess(replies(text_reply("A red square."), text_reply("A blue one.")))
    service = ChatService(upstream.client, make_settings(api_key=TEST_KEY, max_tokens=256), files=files)
    library = Library(service, store)
    red, blue = write_image(tmp_path / "red.png"), write_image(tmp_path / "blue.png", size=(5, 5))
    old, recent = await library.new("ann", "old"), await library.new("ann", "recent")
    await ended(await library.ask("ann", old.id, "what is it?", [red]))
    await asyncio.sleep(0.02)
    cutoff = dt.datetime.now(dt.UTC)
    await asyncio.sleep(0.02)
    await ended(await library.ask("ann", recent.id, "and this?", [blue]))
    for path in files.directory.glob("??/*"):  # a day old: only a reference keeps a file now
        os.utime(path, (time.time() - 2 * 86_400,) * 2)

    assert await library.expire(30, now=cutoff + dt.timedelta(days=30)) == [old.id]
    assert [info.id for info in await library.list("ann")] == [recent.id]
    (kept,) = await store.exchanges("ann", recent.id)
    assert [f.name for f in files.directory.glob("??/*")] == [kept.prompt.files[0].sha256]


async def test_expiry_of_zero_days_keeps_everything(shelf, store):
    made = shelf()
    conversation_id = await made.new()
    assert await made.library.expire(0, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)) == []
    assert await store.get("ann", conversation_id) is not None


# --- following an answer at a pace -----------------------------------------------------------------


async def test_a_paced_watcher_sees_the_first_words_at_once_then_at_most_one_update_an_interval(shelf):
    made = shelf(paced(0.01))  # 30 deltas in 0.3 s
    conversation_id = await made.new()
    live = await made.library.ask("ann", conversation_id, "hi")
    seen: list[tuple[float, str]] = []
    async for _ in live.changes(now=False, interval=0.1):
        seen.append((time.monotonic(), live.text))
    assert seen[0][1] and seen[0][1] != WHOLE  # the first words, not a wait for the interval
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(seen[:-1])]
    assert all(gap >= 0.095 for gap in gaps), gaps
    assert len(seen) <= 6 and seen[-1][1] == WHOLE and live.done  # the end, shown without a wait


async def test_a_message_with_a_nul_byte_is_answered_and_stored_with_a_clean_title(shelf, store):
    made = shelf(paced(0.0))
    conversation_id = "a-conversation-with-a-nul"
    await made.library.ensure("ann", conversation_id, title_for("a\x00b\x1b[31m"))
    await ended(await made.library.ask("ann", conversation_id, "a\x00b"))
    (saved,) = await store.exchanges("ann", conversation_id)
    assert saved.prompt.text == "a\x00b" and saved.status is Status.COMPLETE
    assert (await store.get("ann", conversation_id)).title == "a b [31m"
