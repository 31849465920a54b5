"""The conversation store, each behaviour checked on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from chat.errors import ChatError, ErrorKind
from chat.exchange import Exchange, Prompt, Status, Timings
from chat.files import FileRef
from chat.limits import Limit
from chat.store import (
    SCHEMA_VERSION,
    UPGRADES,
    ConversationInfo,
    Store,
    database_url,
    schema_version,
    title_for,
)

MODEL = "claude-sonnet-5-5"
RESTARTED = ChatError(
    ErrorKind.INTERRUPTED,
    "The server answering went away mid-answer (a restart or a crash), so the answer stops here.",
    cause="server lost",
).to_dict()


CONVERSATION_AT_VERSION_1 = (
    "INSERT INTO conversations (id, owner, title, title_search, created_at, updated_at) "
    "VALUES ('kept', 'ann', 'kept', 'kept', '2026-11-01 10:00:00', '2026-11-01 10:00:00')"
)


def exchange(prompt: str = "hi", answer: str = "Hello", status: Status = Status.COMPLETE) -> Exchange:
    """An exchange whose answer is `answer` (None for no answer at all)."""
    response = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": answer}],
        "model": MODEL,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    return Exchange(Prompt(prompt), {"model": MODEL}, status=status, response=response)


async def column(url: str, sql: str) -> list[Any]:
    """The first column of a query run straight on the database, past the store."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql))
            return list(result.scalars()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def not_found(call: Any) -> None:
    """Assert the awaitable raises the store's not-found error."""
    with pytest.raises(ChatError) as caught:
        await call
    assert caught.value.kind is ErrorKind.NOT_FOUND


def ids(infos: list[ConversationInfo]) -> list[str]:
    return [info.id for info in infos]


@pytest.fixture
async def anns(store: Store) -> ConversationInfo:
    """A conversation of ann's with one exchange."""
    made = await store.create("ann", "Secret plans")
    await store.save("ann", made.id, 0, exchange("the secret", "is safe"))
    return made


# --- conversations ---------------------------------------------------------------------------------


async def test_a_new_conversation_is_empty_and_dated_in_utc(store: Store) -> None:
    created = await store.create("ann", "Trip plans")
    assert created.owner == "ann" and created.title == "Trip plans" and created.exchange_count == 0
    assert created.created_at.tzinfo is dt.UTC and created.updated_at == created.created_at
    assert await store.get("ann", created.id) == created


async def test_conversation_ids_are_random_and_url_safe(store: Store) -> None:
    first, second = await store.create("ann", "a"), await store.create("ann", "b")
    assert first.id != second.id and len(first.id) >= 20
    assert all(c.isalnum() or c in "-_" for c in first.id)


async def test_ensure_makes_the_conversation_under_the_given_id_once(store: Store) -> None:
    made = await store.ensure("ann", "chosen-by-the-tab-0001", "Trip plans")
    again = await store.ensure("ann", "chosen-by-the-tab-0001", "Another title")
    assert made.id == again.id == "chosen-by-the-tab-0001"
    assert (again.title, again.exchange_count) == ("Trip plans", 0)
    assert ids(await store.list("ann")) == ["chosen-by-the-tab-0001"]


async def test_ensure_on_another_owners_id_is_not_found_and_changes_nothing(
    store: Store, anns: ConversationInfo
) -> None:
    await not_found(store.ensure("bob", anns.id, "Mine now"))
    kept = await store.get("ann", anns.id)
    assert kept is not None and kept.title == "Secret plans" and await store.list("bob") == []


async def test_referenced_files_are_those_of_every_stored_prompt(store: Store) -> None:
    first, second = await store.create("ann", "a"), await store.create("bob", "b")
    with_files = exchange()
    with_files.prompt = Prompt("see", (FileRef("a.png", "image/png", "a" * 64, 3),))
    await store.save("ann", first.id, 0, with_files)
    other = exchange()
    other.prompt = Prompt("and", (FileRef("b.pdf", "application/pdf", "b" * 64, 5),))
    await store.save("bob", second.id, 0, other)
    await store.save("bob", second.id, 1, exchange())
    assert await store.referenced_files() == {"a" * 64, "b" * 64}


async def test_list_shows_the_newest_first(store: Store) -> None:
    made = [await store.create("ann", title) for title in ("one", "two", "three")]
    assert ids(await store.list("ann")) == ids(made[::-1])


async def test_saving_moves_a_conversation_to_the_top(store: Store) -> None:
    older, newer = await store.create("ann", "older"), await store.create("ann", "newer")
    await store.save("ann", older.id, 0, exchange())
    listed = await store.list("ann")
    assert ids(listed) == [older.id, newer.id]
    assert listed[0].updated_at > older.updated_at and listed[0].created_at == older.created_at


async def test_list_stops_at_the_limit_keeping_the_newest(store: Store) -> None:
    made = [await store.create("ann", f"n{i}") for i in range(5)]
    assert ids(await store.list("ann", limit=2)) == [made[4].id, made[3].id]


async def test_list_counts_each_conversations_exchanges(store: Store) -> None:
    two, none = await store.create("ann", "two"), await store.create("ann", "none")
    await store.save("ann", two.id, 0, exchange())
    await store.save("ann", two.id, 1, exchange())
    counts = {info.id: info.exchange_count for info in await store.list("ann")}
    assert counts == {two.id: 2, none.id: 0}


async def test_rename_changes_the_title(store: Store) -> None:
    made = await store.create("ann", "Untitled")
    await store.rename("ann", made.id, "Budget")
    renamed = await store.get("ann", made.id)
    assert renamed is not None and renamed.title == "Budget"


async def test_delete_removes_the_conversation_and_its_exchanges(store: Store, database_url: str) -> None:
    gone, kept = await store.create("ann", "gone"), await store.create("ann", "kept")
    await store.save("ann", gone.id, 0, exchange())
    await store.save("ann", kept.id, 0, exchange())
    await store.delete("ann", gone.id)
    assert await store.get("ann", gone.id) is None and await store.exchanges("ann", gone.id) == []
    assert ids(await store.list("ann")) == [kept.id]
    assert await column(database_url, "SELECT conversation_id FROM exchanges") == [kept.id]


# --- search ----------------------------------------------------------------------------------------


async def test_search_matches_the_title_ignoring_case(store: Store) -> None:
    hit = await store.create("ann", "Paris Trip")
    await store.create("ann", "Budget")
    assert ids(await store.list("ann", "pARIS")) == [hit.id]


async def test_search_matches_prompt_text(store: Store) -> None:
    hit, miss = await store.create("ann", "one"), await store.create("ann", "two")
    await store.save("ann", hit.id, 0, exchange("first"))
    await store.save("ann", hit.id, 1, exchange("Which Volcano is tallest?"))
    await store.save("ann", miss.id, 0, exchange("hello"))
    assert ids(await store.list("ann", "volcano")) == [hit.id]


async def test_search_matches_answer_text(store: Store) -> None:
    hit, miss = await store.create("ann", "one"), await store.create("ann", "two")
    await store.save("ann", hit.id, 0, exchange("hi", "Mount EVEREST is"))
    await store.save("ann", miss.id, 0, exchange("hi", "Hello"))
    assert ids(await store.list("ann", "everest")) == [hit.id]


async def test_search_folds_case_beyond_ascii(store: Store) -> None:
    hit = await store.create("ann", "one")
    await store.create("ann", "two")
    await store.save("ann", hit.id, 0, exchange("hi", "Viel ÄRGER mit der Straße"))
    assert ids(await store.list("ann", "ärger")) == [hit.id]
    assert ids(await store.list("ann", "STRASSE")) == [hit.id]


async def test_search_takes_percent_and_underscore_literally(store: Store) -> None:
    hit = await store.create("ann", "50% off_sale")
    await store.create("ann", "500 offers")
    assert ids(await store.list("ann", "0% off_")) == [hit.id]
    assert await store.list("ann", "_%") == []


async def test_a_blank_query_lists_everything(store: Store) -> None:
    made = [await store.create("ann", "a"), await store.create("ann", "b")]
    assert ids(await store.list("ann", "  ")) == ids(made[::-1])


# --- exchanges -------------------------------------------------------------------------------------


async def test_saved_exchanges_come_back_exactly_in_position_order(store: Store) -> None:
    made = await store.create("ann", "t")
    picture = FileRef("cat.png", "image/png", "ab" * 32, 1234)
    rich = exchange("look at this\nplease", "A cat ☺", Status.COMPLETE)
    rich = Exchange(
        Prompt(rich.prompt.text, (picture,)),
        {"model": MODEL, "max_tokens": 256, "system": "Be brief."},
        context=1,
        status=Status.FAILED,
        response=rich.response,
        error=ChatError(ErrorKind.API_BUSY, "Claude is busy.", status=529),
        timings=Timings(0.25, 0.5, 1.75),
    )
    saved = [exchange("first", "one"), rich, exchange("third", "three", Status.STOPPED)]
    for position, item in reversed(list(enumerate(saved))):
        await store.save("ann", made.id, position, item)
    assert [e.to_dict() for e in await store.exchanges("ann", made.id)] == [e.to_dict() for e in saved]


async def test_saving_at_an_existing_position_replaces_it(store: Store) -> None:
    made = await store.create("ann", "t")
    await store.save("ann", made.id, 0, exchange("hi", "A first draft", Status.STREAMING))
    final = exchange("hi", "Hello there")
    await store.save("ann", made.id, 0, final)
    assert [e.to_dict() for e in await store.exchanges("ann", made.id)] == [final.to_dict()]
    assert ids(await store.list("ann", "hello there")) == [made.id]
    assert await store.list("ann", "draft") == []


async def test_a_partial_save_replaces_only_an_exchange_still_streaming(store: Store) -> None:
    first, second = await store.create("ann", "a"), await store.create("ann", "b")
    await store.save("ann", first.id, 0, exchange("q", "so f", Status.STREAMING))
    await store.save("ann", second.id, 0, exchange("q", "The end.", Status.COMPLETE))
    await store.save_partials(
        [
            ("ann", first.id, 0, exchange("q", "so far", Status.STREAMING)),
            ("ann", second.id, 0, exchange("q", "The e", Status.STREAMING)),
        ]
    )
    assert [e.text for e in await store.exchanges("ann", first.id)] == ["so far"]
    assert [(e.status, e.text) for e in await store.exchanges("ann", second.id)] == [
        (Status.COMPLETE, "The end.")
    ]


async def test_a_partial_save_under_another_owner_changes_nothing(
    store: Store, anns: ConversationInfo
) -> None:
    await store.save("ann", anns.id, 1, exchange("more", "so f", Status.STREAMING))
    await store.save_partials([("bob", anns.id, 1, exchange("more", "bob's words", Status.STREAMING))])
    assert [e.text for e in await store.exchanges("ann", anns.id)] == ["is safe", "so f"]


async def test_keep_deletes_the_exchanges_from_that_position_on(store: Store) -> None:
    made = await store.create("ann", "t")
    for position in range(4):
        await store.save("ann", made.id, position, exchange(f"q{position}"))
    await store.keep("ann", made.id, 2)
    assert [e.prompt.text for e in await store.exchanges("ann", made.id)] == ["q0", "q1"]
    info = await store.get("ann", made.id)
    assert info is not None and info.exchange_count == 2


async def test_keep_zero_empties_the_conversation_but_keeps_it(store: Store) -> None:
    made = await store.create("ann", "t")
    await store.save("ann", made.id, 0, exchange())
    await store.keep("ann", made.id, 0)
    assert await store.exchanges("ann", made.id) == [] and await store.get("ann", made.id) is not None


# --- owners ----------------------------------------------------------------------------------------


async def test_another_owner_cannot_get_it(store: Store, anns: ConversationInfo) -> None:
    assert await store.get("bob", anns.id) is None


async def test_another_owner_sees_none_of_its_exchanges(store: Store, anns: ConversationInfo) -> None:
    assert await store.exchanges("bob", anns.id) == []


async def test_another_owner_does_not_list_or_find_it(store: Store, anns: ConversationInfo) -> None:
    bobs = await store.create("bob", "Bob's")
    assert ids(await store.list("bob")) == [bobs.id]
    assert await store.list("bob", "secret") == []


async def test_another_owner_cannot_rename_it(store: Store, anns: ConversationInfo) -> None:
    await not_found(store.rename("bob", anns.id, "Mine now"))
    kept = await store.get("ann", anns.id)
    assert kept is not None and kept.title == "Secret plans"


async def test_another_owner_cannot_delete_it(store: Store, anns: ConversationInfo) -> None:
    await not_found(store.delete("bob", anns.id))
    assert len(await store.exchanges("ann", anns.id)) == 1


async def test_another_owner_cannot_save_into_it(store: Store, anns: ConversationInfo) -> None:
    before = await store.get("ann", anns.id)
    await not_found(store.save("bob", anns.id, 0, exchange("overwritten")))
    await not_found(store.save("bob", anns.id, 1, exchange("added")))
    assert [e.prompt.text for e in await store.exchanges("ann", anns.id)] == ["the secret"]
    assert await store.get("ann", anns.id) == before


async def test_another_owner_cannot_cut_it(store: Store, anns: ConversationInfo) -> None:
    await not_found(store.keep("bob", anns.id, 0))
    assert len(await store.exchanges("ann", anns.id)) == 1


async def test_an_unknown_conversation_is_not_found(store: Store) -> None:
    assert await store.get("ann", "nope") is None and await store.exchanges("ann", "nope") == []
    for call in (
        store.rename("ann", "nope", "x"),
        store.delete("ann", "nope"),
        store.save("ann", "nope", 0, exchange()),
        store.keep("ann", "nope", 0),
    ):
        await not_found(call)


# --- expiry ----------------------------------------------------------------------------------------


async def test_expire_deletes_only_conversations_not_updated_since(store: Store, database_url: str) -> None:
    stale, touched = await store.create("ann", "stale"), await store.create("bob", "touched")
    await store.save("ann", stale.id, 0, exchange())
    await asyncio.sleep(0.01)
    cutoff = dt.datetime.now(dt.UTC)
    await asyncio.sleep(0.01)
    await store.save("bob", touched.id, 0, exchange())
    fresh = await store.create("ann", "fresh")
    assert await store.expire(cutoff) == [stale.id]
    assert ids(await store.list("ann")) == [fresh.id] and ids(await store.list("bob")) == [touched.id]
    assert await column(database_url, "SELECT conversation_id FROM exchanges") == [touched.id]
    assert await store.expire(cutoff) == []


# --- opening ---------------------------------------------------------------------------------------


async def test_reopening_stops_unended_answers_and_keeps_their_partial_text(database_url: str) -> None:
    store = await Store.open(database_url)
    made = await store.create("ann", "t")
    done = exchange("one", "Complete answer")
    await store.save("ann", made.id, 0, done)
    await store.save("ann", made.id, 1, exchange("two", "Hel", Status.STREAMING))
    await store.save("ann", made.id, 2, Exchange(Prompt("three"), {"model": MODEL}))  # pending
    await store.close()

    reopened = await Store.open(database_url)
    try:
        assert reopened.interrupted_on_open == 2
        first, second, third = await reopened.exchanges("ann", made.id)
        assert first.to_dict() == done.to_dict()
        assert second.status is Status.STOPPED and second.text == "Hel"
        assert second.error is not None and second.error.to_dict() == RESTARTED
        assert third.status is Status.STOPPED and third.response is None
        assert third.error is not None and third.error.to_dict() == RESTARTED
        assert sorted(await column(database_url, "SELECT status FROM exchanges")) == [
            "complete",
            "stopped",
            "stopped",
        ]
    finally:
        await reopened.close()


async def test_reopening_with_nothing_unended_marks_nothing(database_url: str) -> None:
    store = await Store.open(database_url)
    made = await store.create("ann", "t")
    await store.save("ann", made.id, 0, exchange("two", "Hel", Status.STREAMING))
    await store.close()
    await (await Store.open(database_url)).close()
    again = await Store.open(database_url)
    try:
        assert again.interrupted_on_open == 0
        assert (await again.exchanges("ann", made.id))[0].error is not None
    finally:
        await again.close()


async def test_the_schema_version_is_recorded_once(database_url: str) -> None:
    for _ in range(2):
        store = await Store.open(database_url)
        assert store.version == SCHEMA_VERSION == 3
        await store.close()
    assert await column(database_url, "SELECT version FROM schema_version ORDER BY version") == [1, 2, 3]


async def at_version(url: str, version: int) -> None:
    """Make the database as an app at that schema version left it (its upgrade steps only)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: schema_version.create(sync))
            for step in range(1, version + 1):
                await conn.run_sync(UPGRADES[step - 1])
                await conn.execute(
                    schema_version.insert().values(version=step, applied_at=dt.datetime.now(dt.UTC))
                )
    finally:
        await engine.dispose()


async def test_a_database_at_version_1_gets_the_counters_and_keeps_its_conversations(
    database_url: str,
) -> None:
    await at_version(database_url, 1)
    await column(database_url, CONVERSATION_AT_VERSION_1)
    store = await Store.open(database_url)
    try:
        assert store.version == SCHEMA_VERSION and ids(await store.list("ann")) == ["kept"]
        assert await store.add_tokens("2026-12-01", [Limit("app", 10)], 4) is None
        assert await store.spent("app", "2026-12-01") == 4
    finally:
        await store.close()


async def test_an_answer_left_streaming_at_version_2_is_stopped_on_the_upgrade(database_url: str) -> None:
    await at_version(database_url, 2)
    await column(database_url, CONVERSATION_AT_VERSION_1)
    record = json.dumps(exchange("two", "Hel", Status.STREAMING).to_dict())
    await column(
        database_url,
        "INSERT INTO exchanges (conversation_id, position, exchange_id, status, prompt_search, "
        f"answer_search, record) VALUES ('kept', 0, 'x', 'streaming', 'two', 'hel', '{record}')",
    )
    store = await Store.open(database_url)
    try:
        (stopped,) = await store.exchanges("ann", "kept")
        assert store.interrupted_on_open == 1 and stopped.status is Status.STOPPED and stopped.text == "Hel"
    finally:
        await store.close()


async def test_reopening_keeps_every_conversation(database_url: str) -> None:
    store = await Store.open(database_url)
    made = await store.create("ann", "kept")
    saved = exchange()
    await store.save("ann", made.id, 0, saved)
    listed = await store.list("ann")
    await store.close()
    reopened = await Store.open(database_url)
    try:
        assert await reopened.list("ann") == listed
        assert [e.to_dict() for e in await reopened.exchanges("ann", made.id)] == [saved.to_dict()]
    finally:
        await reopened.close()


async def test_a_database_from_a_newer_app_is_refused(database_url: str) -> None:
    await (await Store.open(database_url)).close()
    await column(
        database_url, "INSERT INTO schema_version (version, applied_at) VALUES (99, '2030-01-01 00:00:00')"
    )
    with pytest.raises(ChatError) as caught:
        await Store.open(database_url)
    assert caught.value.kind is ErrorKind.CONFIG and caught.value.facts["version"] == 99


# --- concurrency -----------------------------------------------------------------------------------


async def test_concurrent_saves_from_many_tasks_all_land(store: Store) -> None:
    made = await store.create("ann", "busy")
    await asyncio.gather(*(store.save("ann", made.id, n, exchange(f"q{n}", f"a{n}")) for n in range(40)))
    saved = await store.exchanges("ann", made.id)
    assert [e.prompt.text for e in saved] == [f"q{n}" for n in range(40)]
    assert [e.text for e in saved] == [f"a{n}" for n in range(40)]


async def test_concurrent_work_on_many_conversations_all_lands(store: Store) -> None:
    async def chat(owner: str) -> str:
        made = await store.create(owner, owner)
        for n in range(5):
            await store.save(owner, made.id, n, exchange(f"{owner} {n}"))
            await store.list(owner)
        return made.id

    owners = [f"user{n}" for n in range(20)]
    made = await asyncio.gather(*(chat(owner) for owner in owners))
    for owner, conversation_id in zip(owners, made, strict=True):
        info = await store.get(owner, conversation_id)
        assert info is not None and info.exchange_count == 5


# --- titles and URLs (no database) -----------------------------------------------------------------


def test_a_title_is_the_first_line_with_whitespace_folded() -> None:
    assert title_for("\n  What   is\tthe  plan?  \nMore detail") == "What is the plan?"


def test_a_long_title_is_cut_to_60_characters_with_an_ellipsis() -> None:
    title = title_for("word " * 30)
    assert len(title) == 60 and title.endswith("…") and title.startswith("word word")


def test_a_title_of_60_characters_is_kept_whole() -> None:
    assert title_for("x" * 60) == "x" * 60


def test_a_blank_message_gives_a_blank_title() -> None:
    assert title_for(" \n\t") == ""


def test_plain_database_urls_get_their_async_driver() -> None:
    assert database_url("sqlite:///data/chat.db").drivername == "sqlite+aiosqlite"
    assert database_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert database_url("postgresql+asyncpg://u@h/db").drivername == "postgresql+asyncpg"


def test_other_databases_are_refused() -> None:
    with pytest.raises(ChatError) as caught:
        database_url("mysql://u@h/db")
    assert caught.value.kind is ErrorKind.CONFIG
