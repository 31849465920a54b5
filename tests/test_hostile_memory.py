"""Issue 12, item 6: memory bounded per session.

A session's state expires, a closed tab's session goes at once, Gradio keeps a set number of
sessions, and none of it (nor the library's conversations) holds an attachment's base64.
A tab whose session went comes back to its conversation. Real Gradio servers are driven through
the page's own protocol (bench/memory.py `PageSession`); answers come from the offline model
or the in-process scripted upstream through the real SDK.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import gc
import time
import types
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import gradio as gr
import httpx
import pytest

import app
from bench import memory
from bench.memory import PageSession
from chat import ChatService
from chat.files import FileStore
from chat.library import Library
from chat.reply import Upstream
from chat.store import Store
from tests.conftest import free_port, make_settings, write_image
from tests.upstream import TEST_KEY, InProcess, replies, text_reply
from ui import page
from ui.server import DEFAULT_SESSION_CAPACITY, ServerSettings
from ui.visitors import Tab

WAIT = 20.0  # the most any test waits for Gradio to drop a state or a session


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., gr.Blocks]]:
    """Serve the real page (offline model) with these server settings; stopped at the end."""
    served: list[gr.Blocks] = []

    def start(server: ServerSettings | None = None, tab_ttl: float | None = None) -> gr.Blocks:
        if tab_ttl is not None:
            monkeypatch.setattr(page, "TAB_TTL_SECONDS", tab_ttl)
        server = server or ServerSettings()
        settings = make_settings(force_offline=True, offline_delay=0.0, data_dir=tmp_path / "data")
        demo = app.build_demo(settings, server)
        app.start(demo, server, server_port=free_port(), quiet=True)
        served.append(demo)
        return demo

    yield start
    for demo in served:
        app.stop(demo)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
        yield client


async def open_tab(http: httpx.AsyncClient, demo: gr.Blocks, heartbeat: bool = False) -> PageSession:
    """A browser tab on the page, loaded."""
    url = demo.local_url.rstrip("/")
    tab = PageSession(http, url, (await http.get(f"{url}/config")).json())
    await tab.open(heartbeat)
    return tab


def tab_state_id(demo: gr.Blocks) -> int:
    """The page's `tab` gr.State."""
    return next(b._id for b in demo.blocks.values() if isinstance(b, gr.State) and isinstance(b.value, Tab))


def messages_sent(tab: PageSession) -> list[str]:
    """The texts of the user's messages on the tab's screen."""
    chatbot = next(i for i, kind in tab.types.items() if kind == "chatbot")
    shown = tab.values.get(chatbot) or []
    return [_text(message.get("content")) for message in shown if message.get("role") == "user"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    return " ".join(_text(part) for part in content or [])


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait until the condition holds (polling), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


# --- Gradio's sessions ---------------------------------------------------------------------------


async def test_a_tabs_state_is_deleted_after_its_time_to_live(serve, http):
    demo = serve(tab_ttl=1.0)
    tab = await open_tab(http, demo)
    await tab.send("hello")
    sessions, tab_id = demo.state_holder.session_data, tab_state_id(demo)
    assert tab_id in sessions[tab.session_hash].state_data
    await until(lambda: tab_id not in sessions[tab.session_hash].state_data)


async def test_a_closed_tabs_session_is_dropped_at_once(serve, http):
    demo = serve()
    tab = await open_tab(http, demo, heartbeat=True)
    await tab.send("hello")
    assert tab.session_hash in demo.state_holder
    await tab.close()
    await until(lambda: tab.session_hash not in demo.state_holder)


async def test_gradio_keeps_at_most_the_configured_number_of_sessions(serve, http):
    demo = serve(ServerSettings(session_capacity=2))
    tabs = [await open_tab(http, demo) for _ in range(4)]
    assert [tab.session_hash in demo.state_holder for tab in tabs] == [False, False, True, True]


@pytest.mark.parametrize("how", ["expired", "closed", "pushed out"])
async def test_a_tab_whose_session_went_comes_back_to_its_conversation(serve, http, how):
    demo = serve(
        ServerSettings(session_capacity=1) if how == "pushed out" else None,
        tab_ttl=1.0 if how == "expired" else None,
    )
    tab = await open_tab(http, demo, heartbeat=how == "closed")
    await tab.send("first question")
    opened = dict(tab.values)
    if how == "expired":
        await until(
            lambda: tab_state_id(demo) not in demo.state_holder.session_data[tab.session_hash].state_data
        )
    elif how == "closed":
        await tab.close()
        await until(lambda: tab.session_hash not in demo.state_holder)
    else:
        await open_tab(http, demo)
        assert tab.session_hash not in demo.state_holder
    await tab.send("second question")  # the page still holds its visitor and open chat
    assert messages_sent(tab) == ["first question", "second question"]
    assert tab.answered() and not tab.failures
    storage = [i for i, kind in tab.types.items() if kind == "browserstate"]
    assert {i: tab.values[i] for i in storage} == {i: opened[i] for i in storage}  # same visitor, same chat


def test_the_session_capacity_is_read_from_app_session_capacity():
    assert ServerSettings.from_env({"APP_SESSION_CAPACITY": "250"}).session_capacity == 250
    assert ServerSettings.from_env({}).session_capacity == DEFAULT_SESSION_CAPACITY


def test_gradio_is_launched_with_the_configured_session_capacity(serve):
    demo = serve(ServerSettings(session_capacity=77))
    assert demo.state_holder.capacity == 77


# --- what an answer keeps ------------------------------------------------------------------------

SHARED = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    asyncio.AbstractEventLoop,
    ChatService,
    Upstream,
    anthropic.AsyncAnthropic,
    Store,
)


def reaches(root: object, found: Callable[[object], bool]) -> bool:
    """True when an object `found` accepts is reachable from `root`, past no app-wide object."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if found(obj):
            return True
        if not isinstance(obj, (*SHARED, str, bytes, bytearray)):
            stack.extend(gc.get_referents(obj))
    return False


def holds(root: object, needle: str) -> bool:
    """True when `needle` is in a string or bytes reachable from `root`, past no app-wide object."""
    wanted = needle.encode()
    return reaches(
        root,
        lambda obj: (
            (isinstance(obj, str) and needle in obj) or (isinstance(obj, bytes | bytearray) and wanted in obj)
        ),
    )


@pytest.fixture
async def library(tmp_path: Path) -> AsyncIterator[Callable[..., Library]]:
    """A library on a SQLite file over these scripted answers (closed at the end)."""
    made: list[tuple[Library, Store]] = []

    async def make(*answers: Any, **options: Any) -> Library:
        upstream = InProcess(replies(*answers))
        settings = make_settings(api_key=TEST_KEY, max_tokens=256)
        service = ChatService(upstream.client, settings, files=FileStore(tmp_path / "files"))
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
        made.append((Library(service, store, **options), store))
        made[-1][0].upstream = upstream  # type: ignore[attr-defined]
        return made[-1][0]

    yield make
    for each, store in made:
        await asyncio.wait_for(each.close(), WAIT)
        await store.close()


async def test_an_ended_answer_keeps_none_of_its_files_base64_in_memory(library, tmp_path):
    image = write_image(tmp_path / "photo.png", size=(64, 48))
    needle = base64.b64encode(image.read_bytes()).decode()[:80]
    shelf = await library(text_reply("A red ", "rectangle."))
    conversation_id = (await shelf.new("ann", "Photo")).id
    live = await shelf.ask("ann", conversation_id, "What is this?", [str(image)])
    await asyncio.wait_for(live.wait(), WAIT)
    assert needle in str(shelf.upstream.requests[-1])  # it was sent
    conversation = await shelf.conversation("ann", conversation_id)
    assert conversation.last_reply is live.reply
    assert not holds(conversation, needle)
    assert not holds(live, needle)


class Visit:
    """Stands for what a web request's context holds (Gradio's: the session's copy of the page)."""


async def test_an_ended_answer_keeps_nothing_of_the_request_that_asked_it(library):
    shelf = await library(text_reply("Done."))
    conversation_id = (await shelf.new("ann", "Chat")).id
    request = contextvars.ContextVar[Visit]("request")

    async def asked_in_a_request() -> Any:
        request.set(Visit())  # only this task's context holds it
        return await shelf.ask("ann", conversation_id, "Hello")

    live = await asyncio.create_task(asked_in_a_request())
    await asyncio.wait_for(live.wait(), WAIT)
    conversation = await shelf.conversation("ann", conversation_id)
    assert not reaches(conversation, lambda obj: isinstance(obj, Visit))


async def test_the_library_keeps_at_most_its_cap_of_conversations_in_memory(library):
    shelf = await library(text_reply("Kept."), max_cached=3)
    first = (await shelf.new("ann", "First")).id
    await asyncio.wait_for((await shelf.ask("ann", first, "Keep this")).wait(), WAIT)
    for number in range(6):
        await shelf.conversation("ann", (await shelf.new("ann", f"Chat {number}")).id)
    assert len(shelf._cache) == 3 and first not in shelf._cache
    again = await shelf.conversation("ann", first)  # read back from the store
    assert [exchange.prompt.text for exchange in again.exchanges] == ["Keep this"]
    assert again.exchanges[0].text == "Kept."


# --- the measurement -----------------------------------------------------------------------------


def test_the_memory_benchmark_measures_both_apps(capsys):
    memory.main(["--sessions", "3"])
    printed = capsys.readouterr().out
    assert "echo      3 sessions" in printed and "app       3 sessions" in printed
    assert "app / echo:" in printed and "had a failure" not in printed
