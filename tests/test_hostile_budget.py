"""Hostile use of the spend guards (issue 12, items 1 to 3), through the real app and its store.

Each test replays one of the issue's measurements: many sessions at once against a budget, new
sessions to dodge a rate, a restart to reset a count, an API caller asking for a huge max_tokens.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from chat.library import Library
from chat.service import ChatService
from chat.store import Store
from tests.conftest import answer_text, chat, launched_app, make_settings, notice_in
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY, InProcess, replies, text_reply
from ui.visitors import new_token

BIG_ANSWER = " w" * 100_000  # 100,000 output tokens (the fake upstream counts a token a word)


def answered(updates: list[object]) -> bool:
    return notice_in(updates[-1]) is None


def spent_today(data_dir: Path) -> int:
    """The app's tokens spent today, read from its store's file past the app."""
    with sqlite3.connect(data_dir / "chats.db") as db:
        day = dt.datetime.now(dt.UTC).date().isoformat()
        row = db.execute("SELECT tokens FROM token_days WHERE scope = 'app' AND day = ?", (day,)).fetchone()
    return int(row[0]) if row else 0


def from_sessions(url: str, messages: list[str]) -> list[list[object]]:
    """Send each message from a session of its own (a new visitor each), all at once."""
    clients = [Client(url, verbose=False) for _ in messages]  # connected first: the sends race
    with ThreadPoolExecutor(max_workers=len(messages)) as pool:
        return list(pool.map(chat, clients, messages))


def test_forty_sessions_at_once_cannot_spend_past_the_daily_budget(tmp_path: Path) -> None:
    # The measurement: a 200,000-token budget, answers of about 104,000 tokens, 40 sessions at once.
    with LoopbackMessagesAPI(replies(text_reply(BIG_ANSWER, input_tokens=4_000))) as api:
        settings = make_settings(
            api_key=TEST_KEY,
            base_url=api.url,
            max_tokens=100_000,
            daily_token_budget=200_000,
            visitor_daily_tokens=0,
            data_dir=tmp_path / "data",
        )
        with launched_app(settings) as url:
            results = from_sessions(url, [f"essay {n}" for n in range(40)])
    assert sum(answered(r) for r in results) == 1
    assert len(api.requests) == 1  # the 39 refused were never sent
    assert spent_today(tmp_path / "data") == 104_000  # the one answer's usage: under the 200,000
    refused = [notice_in(r[-1]) for r in results if not answered(r)]
    assert all("this app's budget for today" in text and "nothing was sent" in text for text in refused)


def test_a_visitor_budget_refuses_one_visitor_and_not_the_next(tmp_path: Path) -> None:
    with LoopbackMessagesAPI(replies(text_reply("Long.", input_tokens=900))) as api:
        settings = make_settings(
            api_key=TEST_KEY,
            base_url=api.url,
            max_tokens=100,
            visitor_daily_tokens=1_000,
            data_dir=tmp_path / "data",
        )
        with launched_app(settings) as url:
            token = new_token()
            assert answer_text(chat(Client(url, verbose=False), "one", token=token)[-1]) == "Long."
            again = chat(Client(url, verbose=False), "two", token=token)  # another tab, same browser
            assert "your own budget for today" in (notice_in(again[-1]) or "")
            other = chat(Client(url, verbose=False), "three", token=new_token())
            assert answered(other)
    assert [r["messages"][-1]["content"] for r in api.requests] == ["one", "three"]


async def test_the_budget_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chats.db'}"
    settings = make_settings(api_key=TEST_KEY, max_tokens=100, daily_token_budget=1_000, data_dir=tmp_path)
    first = InProcess(replies(text_reply("Spent.", input_tokens=950)))
    library = await Library.open(ChatService(first.client, settings), url)
    conversation = await library.new("visitor:ann", "one")
    await (await library.ask("visitor:ann", conversation.id, "spend it")).wait()
    await library.close()
    await library.store.close()

    restarted = InProcess()
    library = await Library.open(ChatService(restarted.client, settings), url)
    try:
        conversation = await library.new("visitor:bob", "two")
        refused = await (await library.ask("visitor:bob", conversation.id, "more")).wait()
        assert refused.error is not None and "this app's budget for today" in refused.error.message
        assert restarted.requests == []
        store: Store = library.store
        assert await store.spent("app", dt.datetime.now(dt.UTC).date().isoformat()) == 951
    finally:
        await library.close()
        await library.store.close()


def test_new_sessions_from_one_address_share_its_rate(tmp_path: Path) -> None:
    # The measurement: new sessions, each a new visitor, sent past a rate of 3 a minute.
    with LoopbackMessagesAPI() as api:
        settings = make_settings(
            api_key=TEST_KEY, base_url=api.url, rate_limit_per_address=3, data_dir=tmp_path / "data"
        )
        with launched_app(settings) as url:
            results = from_sessions(url, [f"hello {n}" for n in range(12)])
    assert sum(answered(r) for r in results) == 3
    assert len(api.requests) == 3
    refused = [notice_in(r[-1]) or "" for r in results if not answered(r)]
    assert all("your network address has sent 3 messages" in text for text in refused)


def test_every_tab_of_a_visitor_shares_its_rate(tmp_path: Path) -> None:
    with LoopbackMessagesAPI() as api:
        settings = make_settings(
            api_key=TEST_KEY, base_url=api.url, rate_limit_per_minute=2, data_dir=tmp_path / "data"
        )
        with launched_app(settings) as url:
            token = new_token()
            results = [chat(Client(url, verbose=False), f"tab {n}", token=token) for n in range(4)]
    assert [answered(r) for r in results] == [True, True, False, False]
    assert "at most 2 messages a minute" in (notice_in(results[2][-1]) or "")
    assert len(api.requests) == 2


def test_the_rate_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    token = new_token()
    with LoopbackMessagesAPI() as api:
        settings = make_settings(
            api_key=TEST_KEY, base_url=api.url, rate_limit_per_minute=1, data_dir=data_dir
        )
        with launched_app(settings) as url:
            assert answered(chat(Client(url, verbose=False), "before", token=token))
        with launched_app(settings) as url:
            after = chat(Client(url, verbose=False), "after the restart", token=token)
    assert "at most 1 messages a minute" in (notice_in(after[-1]) or "")
    assert len(api.requests) == 1


def test_max_tokens_from_an_api_caller_is_capped_at_the_configured_limit(tmp_path: Path) -> None:
    with LoopbackMessagesAPI() as api:
        settings = make_settings(
            api_key=TEST_KEY, base_url=api.url, max_tokens=4096, data_dir=tmp_path / "data"
        )
        with launched_app(settings) as url:
            assert answered(chat(Client(url, verbose=False), "hi", max_tokens=1_000_000))
    assert api.requests[0]["max_tokens"] == 4096


def test_a_model_not_offered_is_refused_and_not_sent(tmp_path: Path) -> None:
    with LoopbackMessagesAPI() as api:
        settings = make_settings(api_key=TEST_KEY, base_url=api.url, data_dir=tmp_path / "data")
        with launched_app(settings) as url, pytest.raises(AppError, match="claude-secret-internal is not in"):
            chat(Client(url, verbose=False), "hi", model="claude-secret-internal")
    assert api.requests == []
