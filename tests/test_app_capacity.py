"""The real app under several users, driven the way its web page is: concurrency, pacing, Stop, busy."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

import app
from bench.page_client import Answer, PageChat, PageConfig
from bench.page_client import answer_text as page_answer_text
from chat import ChatError, ErrorKind
from chat.limits import BUSY_MESSAGE
from tests.conftest import free_port, launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY, echo_reply
from ui.render import STOPPED_TITLE
from ui.server import ServerSettings
from ui.wording import say

TIMEOUT = 30.0  # seconds any one chat may take here, however loaded the machine


def long_answer(words: int, delay: float) -> Callable[[dict], object]:
    """A script answering every request with `words` words, two per delta, `delay` seconds apart."""
    text = " ".join(f"w{number}" for number in range(words))
    return lambda body: echo_reply(text, delay=delay)


@pytest.fixture
def page(loopback_api: LoopbackMessagesAPI, tmp_path: Path) -> Callable[..., AsyncIterator[PageConfig]]:
    """Launch the app against the loopback API (settings overridable) and read its page config."""

    @asynccontextmanager
    async def launch(**overrides: object) -> AsyncIterator[PageConfig]:
        settings = make_settings(
            api_key=TEST_KEY, base_url=loopback_api.url, data_dir=tmp_path / "data", **overrides
        )
        with launched_app(settings) as url:
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                yield await PageConfig.fetch(http, url)

    return launch


async def full_answer(tab: PageChat, message: str) -> Answer:
    """Send a message and return the answer once the page has it all."""
    async with asyncio.timeout(TIMEOUT):
        async for _ in tab.send(message):
            pass
    assert tab.answer is not None
    return tab.answer


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


async def test_concurrent_chats_stream_at_the_same_time(page, loopback_api):
    loopback_api.script = long_answer(words=80, delay=0.02)  # 40 deltas: 0.8 s per answer
    async with page() as config, httpx.AsyncClient(timeout=TIMEOUT) as http:
        tabs = [PageChat(http, config) for _ in range(5)]
        answers = await asyncio.gather(*(full_answer(tab, f"chat {n}") for n, tab in enumerate(tabs)))
    assert all(answer.error is None and answer.text.endswith("w79") for answer in answers)
    exchanges = loopback_api.exchanges
    assert max(e.started_at for e in exchanges) < min(e.finished_at for e in exchanges)  # all overlapped


async def test_the_page_gets_fewer_updates_than_deltas_and_the_whole_text(page, loopback_api):
    loopback_api.script = long_answer(words=200, delay=0.003)  # 100 deltas, 3 ms apart
    async with page() as config, httpx.AsyncClient(timeout=TIMEOUT) as http:
        answer = await full_answer(PageChat(http, config), "a long one")
    assert answer.text == " ".join(f"w{number}" for number in range(200))
    assert answer.updates <= 100 / 3  # at 50 ms per update; one update per delta would be 100


async def test_stop_closes_the_upstream_connection_within_100_ms(page, loopback_api):
    loopback_api.script = long_answer(words=800, delay=0.01)  # 400 deltas: a 4-second answer
    async with page() as config, httpx.AsyncClient(timeout=TIMEOUT) as http:
        tab = PageChat(http, config)
        async with asyncio.timeout(TIMEOUT):
            async for answer in tab.send("tell me everything"):
                if answer.updates == 3:
                    stopped_at = time.monotonic()
                    await tab.cancel()
        exchange = loopback_api.exchanges[0]
        await wait_until(lambda: exchange.client_left_at is not None, timeout=5)
    # Timed from just before the page's POST /gradio_api/cancel (Gradio cancels the generator task,
    # which closes the SDK stream) to the loopback server seeing the hang-up; one monotonic clock,
    # as test, app and server share this process. The bound is the 100 ms with no extra
    # headroom: 4-50 ms were measured here with two CPU hogs running; an answer left open until it
    # ends would take about 4 s.
    closed_after = exchange.client_left_at - stopped_at
    assert closed_after < 0.1, f"the upstream connection closed {closed_after * 1000:.0f} ms after Stop"
    assert exchange.finished_at is None and exchange.events_sent < 400


async def test_stop_keeps_the_partial_answer_on_screen_and_in_the_history(page, loopback_api):
    loopback_api.script = long_answer(words=800, delay=0.01)
    full = " ".join(f"w{number}" for number in range(800))
    async with page() as config, httpx.AsyncClient(timeout=TIMEOUT) as http:
        tab = PageChat(http, config)
        async with asyncio.timeout(TIMEOUT):
            async for answer in tab.send("tell me everything"):
                if answer.updates == 3:
                    await tab.cancel()
            streamed = answer.text.strip()
            redrawn = await redraw_after_stop(http, tab)
        await full_answer(tab, "and then?")
    shown = page_answer_text(redrawn).strip()
    sent = loopback_api.requests[1]["messages"][1]["content"][0]["text"]
    assert streamed and shown.startswith(streamed)  # the redraw adds what arrived before the stream closed
    assert shown and len(shown) < len(full) and full.startswith(shown)
    assert sent.strip() == shown
    assert STOPPED_TITLE in [(m.get("metadata") or {}).get("title") for m in redrawn]


async def redraw_after_stop(http: httpx.AsyncClient, tab: PageChat) -> list[dict]:
    """Run the event the page runs after a stopped answer (its redraw with the receipt); return the screen."""
    config = tab.config
    chatbot = next(id_ for id_, kind in config.component_types.items() if kind == "chatbot")
    copy = config.event(config.follow_up("_submit_fn"))  # ChatInterface's copy of the screen into its state
    redraw = next(
        dep
        for dep in config.events.values()
        if dep.get("trigger_after") == copy["id"] and chatbot in dep["outputs"]
    )
    body = {
        # The screen, then the tab's place (kept by the server; this tab has no browser storage).
        "data": [tab.chatbot, *[None] * (len(redraw["inputs"]) - 1)],
        "event_data": None,
        "fn_index": redraw["id"],
        "trigger_id": None,
        "session_hash": tab.session_hash,
    }
    joined = await http.post(f"{config.url}/gradio_api/queue/join", json=body)
    joined.raise_for_status()
    params = {"session_hash": tab.session_hash}
    async with http.stream("GET", f"{config.url}/gradio_api/queue/data", params=params) as stream:
        async for line in stream.aiter_lines():
            event = json.loads(line[5:]) if line.startswith("data:") else {}
            if event.get("msg") == "process_completed":
                assert event.get("success"), event
                tab.chatbot = event["output"]["data"][redraw["outputs"].index(chatbot)]
                return tab.chatbot
    raise AssertionError("the redraw after Stop never completed")


async def test_a_chat_beyond_the_stream_cap_is_told_the_app_is_busy(page, loopback_api):
    loopback_api.script = long_answer(words=800, delay=0.01)
    async with page(max_streams=1) as config, httpx.AsyncClient(timeout=TIMEOUT) as http:
        first = PageChat(http, config)
        streaming = first.send("the one slot")
        await asyncio.wait_for(anext(streaming), TIMEOUT)  # the first answer is on screen, streaming
        refused = await full_answer(PageChat(http, config), "one too many")
        await first.cancel()
        await asyncio.wait_for(streaming.aclose(), TIMEOUT)
    assert refused.error == say(ChatError(ErrorKind.APP_BUSY, BUSY_MESSAGE)) == BUSY_MESSAGE


def test_gradio_runs_with_the_configured_queue_threads_and_concurrency(settings):
    server = ServerSettings(concurrency_limit=7, max_threads=30, queue_size=11)
    demo = app.build_demo(settings, server)
    app.start(demo, server, server_port=free_port(), quiet=True)
    try:
        chat_events = [fn for fn in demo.fns.values() if fn.api_name in ("chat", "_submit_fn")]
        assert [fn.concurrency_limit for fn in chat_events] == [7, 7]  # the page's event and /chat
        assert (demo._queue.max_size, demo._queue.default_concurrency_limit) == (11, 7)
        assert (demo.max_threads, demo._queue.max_thread_count) == (30, 30)
    finally:
        demo.close()
