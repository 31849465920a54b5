"""The page's handlers (ui/page.py) over a real store and a scripted upstream: what each tab sees and does."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pytest

from chat import ChatService, Status
from chat.files import FileStore
from tests.conftest import Chat, make_settings
from tests.upstream import TEST_KEY, InProcess, Response, replies, text_reply
from ui.page import ChatPage, place
from ui.render import OFFLINE_COST, STOPPED_TITLE, USAGE_TITLE
from ui.server import ServerSettings
from ui.visitors import Tab, is_token, new_conversation_id, new_token, user_owner, visitor_owner

WAIT = 10.0
SCREEN = 0  # where the chat messages are in a view (`ui.page.view`)


class Site:
    """The page's handlers over one service, its library on a SQLite file, a scripted upstream."""

    def __init__(self, data_dir: Path, *responses: Response) -> None:
        self.upstream = InProcess(replies(*responses))
        settings = make_settings(api_key=TEST_KEY, max_tokens=256, data_dir=data_dir)
        service = ChatService(self.upstream.client, settings, files=FileStore(data_dir / "files"))
        self.page = ChatPage(service, ServerSettings(update_interval=0.0))

    @staticmethod
    def tab(visitor: str = "ann") -> Tab:
        """A tab of this visitor on a new chat."""
        return Tab(visitor_owner(visitor.ljust(32, "x")), new_conversation_id())

    async def answer(self, tab: Tab, text: str, history: list[dict[str, Any]] | None = None) -> list[Any]:
        """Send a message in this tab and follow its answer to the end; return the last update."""
        updates = [update async for update in self.page.respond(text, history or [], tab)]
        return updates[-1]

    async def stopped(self, tab: Tab, text: str, history: list[dict[str, Any]], once: str) -> None:
        """Send a message and press Stop (cancel its task, as Gradio does) once the answer shows `once`."""
        shown = asyncio.Event()

        async def follow() -> None:
            async for update in self.page.respond(text, history, tab):
                if any(once in _content(message) for message in update):
                    shown.set()

        task = asyncio.create_task(follow())
        await asyncio.wait_for(shown.wait(), WAIT)
        task.cancel()
        await asyncio.wait({task}, timeout=WAIT)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Callable[..., Site]]:
    made: list[Site] = []

    def make(*responses: Response) -> Site:
        made.append(Site(tmp_path / "data", *responses))
        return made[-1]

    yield make
    for each in made:
        await asyncio.wait_for(each.page.close(), WAIT)


def screen_text(view: tuple[Any, ...]) -> list[str]:
    """The texts a view puts on screen: each message's content, boxes included."""
    return [_content(message) for message in view[SCREEN]]


def _content(message: Any) -> str:
    content = message["content"] if isinstance(message, dict) else message.content
    if isinstance(content, list):
        return " ".join(part for part in content if isinstance(part, str))
    return str(content)


async def text_arrived(page: ChatPage, tab: Tab) -> None:
    """Wait until the tab's answer has some text."""
    library = await page.library()
    async with asyncio.timeout(WAIT):
        while not ((live := library.live(tab.owner, tab.conversation_id)) and live.text):
            await asyncio.sleep(0.01)


async def views_of(page: ChatPage, tab: Tab) -> list[tuple[Any, ...]]:
    """Every view the page shows when this tab opens its conversation, to the end of its answer."""
    return [view async for view in page.show(tab, "")]


async def test_a_tab_that_leaves_mid_answer_leaves_the_answer_running_to_its_end(site):
    made = site(text_reply("Still ", "coming ", "in.", delay=0.05))
    tab = made.tab()
    answer = made.page.respond("hi", [], tab)
    await anext(answer)
    await answer.aclose()  # the tab dropped: Gradio closes the generator, no task is cancelled
    library = await made.page.library()
    live = library.live(tab.owner, tab.conversation_id)
    assert live is not None
    exchange = await asyncio.wait_for(live.wait(), WAIT)
    assert (exchange.status, exchange.text) == (Status.COMPLETE, "Still coming in.")
    (stored,) = await library.store.exchanges(tab.owner, tab.conversation_id)
    assert (stored.status, stored.text) == (Status.COMPLETE, "Still coming in.")


async def test_stop_cancels_the_answer_task_and_closes_the_upstream(site):
    made = site(text_reply("Half ", "an ", "answer ", "and ", "more.", delay=0.2))
    tab = made.tab()
    await made.stopped(tab, "tell me", [], once="Half")
    (call,) = made.upstream.calls
    assert call.client_left_at is not None
    library = await made.page.library()
    (stored,) = await library.store.exchanges(tab.owner, tab.conversation_id)
    assert stored.status is Status.STOPPED and stored.text and stored.text != "Half an answer and more."


async def test_reopening_a_conversation_mid_answer_shows_it_so_far_then_follows_it(site):
    made = site(text_reply("One ", "two ", "three ", "four.", delay=0.1))
    tab = made.tab()
    answer = made.page.respond("count", [], tab)
    await anext(answer)
    await text_arrived(made.page, tab)
    await answer.aclose()
    reloaded = Tab(tab.owner, tab.conversation_id)  # the same visitor, after a reload
    views = await asyncio.wait_for(views_of(made.page, reloaded), WAIT)
    first, last = screen_text(views[0]), screen_text(views[-1])
    assert first[0] == "count" and "One" in first[1] and "four." not in first[1]
    assert last[:2] == ["count", "One two three four."]
    assert len(views) > 2  # it followed the answer as it grew
    assert len(made.upstream.calls) == 1


async def test_stop_from_another_tab_of_the_visitor_closes_the_upstream_within_100_ms(site):
    made = site(text_reply(*COUNTING, delay=0.05))
    asked_in = made.tab()
    answer = made.page.respond("count", [], asked_in)
    await anext(answer)
    await text_arrived(made.page, asked_in)
    await answer.aclose()  # that tab was closed; the answer goes on
    other_tab = Tab(asked_in.owner, asked_in.conversation_id)
    pressed = time.monotonic()
    await made.page.stop(other_tab)
    (call,) = made.upstream.calls
    assert call.client_left_at is not None and call.client_left_at - pressed < 0.1
    library = await made.page.library()
    (stored,) = await library.store.exchanges(asked_in.owner, asked_in.conversation_id)
    assert stored.status is Status.STOPPED and stored.text.startswith("w0 ")


async def test_another_visitor_opening_a_conversation_by_its_id_gets_a_new_empty_chat(site):
    made = site(text_reply("Private."))
    ann = made.tab("ann")
    await made.answer(ann, "my secret")
    bob = Tab(made.tab("bob").owner, ann.conversation_id)  # bob guessed, or stole, the id
    (view,) = await views_of(made.page, bob)
    assert view[SCREEN] == [] and bob.conversation_id != ann.conversation_id
    library = await made.page.library()
    assert await library.list(bob.owner) == []
    assert await made.page.stop(bob) is None and library.live(ann.owner, ann.conversation_id) is None


async def test_another_visitor_can_neither_export_nor_load_into_nor_stop_a_conversation(site):
    made = site(text_reply("Private."), text_reply(*COUNTING, delay=0.05))
    ann = made.tab("ann")
    await made.answer(ann, "my secret")
    shown = [{"role": "user", "content": "my secret"}, {"role": "assistant", "content": "Private."}]
    exported = await made.page.export(shown, ann)
    (json_file,) = [f["path"] for f in exported.value if f["path"].endswith(".json")]
    answer = made.page.respond("count", shown, ann)
    await anext(answer)
    await text_arrived(made.page, ann)
    await answer.aclose()  # ann's answer streams on, with no tab watching

    bob = Tab(made.tab("bob").owner, ann.conversation_id)  # bob has ann's conversation id
    theirs = await made.page.export(shown, bob)
    (bobs_file,) = [f["path"] for f in theirs.value if f["path"].endswith(".json")]
    assert json.loads(Path(bobs_file).read_text())["exchanges"] == []
    await made.page.stop(bob)
    await made.page.load(json_file, bob)
    library = await made.page.library()
    live = library.live(ann.owner, ann.conversation_id)
    assert live is not None and not live.done  # still streaming
    assert bob.conversation_id != ann.conversation_id  # the load made bob a conversation of his own
    await asyncio.wait_for(live.wait(), WAIT)
    stored = await library.store.exchanges(ann.owner, ann.conversation_id)
    assert [e.prompt.text for e in stored] == ["my secret", "count"] and stored[1].status is Status.COMPLETE


async def test_a_sent_message_lists_its_conversation_titled_from_it(site):
    made = site(text_reply("Sure."))
    tab = made.tab()
    listed, title = await made.page.sent({"text": "Plan a picnic\nfor six", "files": []}, "", tab)
    assert listed.choices == [("Plan a picnic", tab.conversation_id)] and title == "Plan a picnic"
    await made.answer(tab, "Plan a picnic\nfor six")
    library = await made.page.library()
    assert [info.title for info in await library.list(tab.owner)] == ["Plan a picnic"]


async def test_a_switch_away_mid_answer_stops_drawing_it_but_not_the_answer(site):
    made = site(text_reply("Slow ", "and ", "steady.", delay=0.1))
    tab = made.tab()
    answer = made.page.respond("go", [], tab)
    await anext(answer)
    started = tab.conversation_id
    [view async for view in made.page.new_chat("", tab)]
    rest = [update async for update in answer]
    assert rest == []  # nothing more drawn over the new chat
    library = await made.page.library()
    live = library.live(tab.owner, started)
    assert live is not None
    await asyncio.wait_for(live.wait(), WAIT)
    (stored,) = await library.store.exchanges(tab.owner, started)
    assert stored.status is Status.COMPLETE and stored.text == "Slow and steady."


async def test_an_export_during_an_answer_leaves_the_streaming_exchange_alone(site):
    made = site(text_reply("One."), text_reply("Two ", "and ", "more.", delay=0.05))
    tab = made.tab()
    shown = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "One."}]
    await made.answer(tab, "first")
    answer = made.page.respond("second", list(shown), tab)
    await anext(answer)  # the second answer is streaming; the page's history still shows one turn
    exported = await made.page.export(list(shown), tab)
    (json_file,) = [Path(f["path"]) for f in exported.value if f["path"].endswith(".json")]
    payload = json.loads(json_file.read_text())
    assert [e["prompt"]["text"] for e in payload["exchanges"]] == ["first"]
    async for _ in answer:
        pass
    library = await made.page.library()
    stored = await library.store.exchanges(tab.owner, tab.conversation_id)
    assert [(e.status, e.text) for e in stored] == [
        (Status.COMPLETE, "One."),
        (Status.COMPLETE, "Two and more."),
    ]


async def test_a_loaded_export_becomes_a_new_stored_conversation_of_the_tab(site, tmp_path):
    made = site(text_reply("One."))
    tab = made.tab()
    shown = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "One."}]
    await made.answer(tab, "first")
    exported = await made.page.export(shown, tab)
    (json_file,) = [f["path"] for f in exported.value if f["path"].endswith(".json")]
    other = made.tab("bob")
    view = await made.page.load(json_file, other)
    assert screen_text(view)[:2] == ["first", "One."]
    library = await made.page.library()
    (info,) = await library.list(other.owner)
    assert info.id == other.conversation_id and info.title == "first"


# --- the redraw after an answer (ui/gradio_fixes.py, fix 3) ----------------------------------------

COUNTING = [f"w{i} " for i in range(50)]


def on_screen(*messages: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"role": role, "content": text} for role, text in messages]


def titles(messages: list[Any]) -> list[str | None]:
    return [
        ((m.metadata if isinstance(m, gr.ChatMessage) else m.get("metadata")) or {}).get("title")
        for m in messages
    ]


async def stopped_after_one_turn(made: Site) -> Tab:
    tab = made.tab()
    await made.answer(tab, "hi")
    await made.stopped(tab, "count", on_screen(("user", "hi"), ("assistant", "hello")), once="w9")
    return tab


async def test_the_stopped_turn_shown_last_is_redrawn_with_its_receipt(site):
    made = site(text_reply("hello"), text_reply(*COUNTING, delay=0.05))
    tab = await stopped_after_one_turn(made)
    shown_now = on_screen(
        ("user", "hi"), ("assistant", "hello"), ("user", "count"), ("assistant", "w0 w1 w2")
    )
    redrawn = await made.page.redraw(shown_now, tab)
    library = await made.page.library()
    stopped = (await library.conversation(tab.owner, tab.conversation_id)).exchanges[1]
    assert redrawn[:3] == shown_now[:3]
    assert redrawn[3].content == stopped.text and stopped.text.startswith("w0 w1")
    assert titles(redrawn[3:]) == [None, STOPPED_TITLE, USAGE_TITLE]


async def test_a_stopped_turn_already_marked_gets_one_receipt_not_two(site):
    made = site(text_reply("hello"), text_reply(*COUNTING, delay=0.05))
    tab = await stopped_after_one_turn(made)
    shown_now = on_screen(("user", "hi"), ("assistant", "hello"), ("user", "count"), ("assistant", "w0"))
    shown_now.append({"role": "assistant", "content": "", "metadata": {"title": STOPPED_TITLE}})
    redrawn = await made.page.redraw(shown_now, tab)
    assert titles(redrawn).count(STOPPED_TITLE) == 1


async def test_no_receipt_goes_on_a_screen_that_moved_on_from_the_stopped_turn(site):
    made = site(text_reply("hello"), text_reply(*COUNTING, delay=0.05))
    tab = await stopped_after_one_turn(made)
    moved_on = on_screen(
        ("user", "hi"), ("assistant", "hello"), ("user", "count"), ("assistant", "w0"), ("user", "n")
    )
    undone = on_screen(("user", "hi"), ("assistant", "hello"))
    for shown_now in (moved_on, undone, []):
        assert await made.page.redraw(shown_now, tab) == gr.skip()


async def test_a_complete_reply_needs_no_stop_receipt(site):
    made = site(text_reply("done"))
    tab = made.tab()
    await made.answer(tab, "count")
    assert await made.page.redraw(on_screen(("user", "count"), ("assistant", "done")), tab) == gr.skip()


async def test_a_stop_receipt_is_not_drawn_over_an_exchange_that_replaced_the_stopped_one(site):
    made = site(text_reply("Half ", "an ", "answer.", delay=0.2))
    tab = made.tab()
    await made.stopped(tab, "tell me", [], once="Half")  # the stopped exchange is at position 0
    notice = await made.answer(tab, "   ")  # Retry, refused: a new exchange 0
    shown_now = [{"role": "user", "content": "   "}, *(message.__dict__ for message in notice)]
    assert await made.page.redraw(shown_now, tab) == gr.skip()


# --- after a restart -------------------------------------------------------------------------------


async def test_after_a_restart_an_open_tab_continues_its_chat_and_gets_it_all_redrawn(site):
    before = site(text_reply("Milk."))
    ann = new_token()
    tab = place(Tab(), ann, None, None)
    await before.answer(tab, "remember the milk")
    await before.page.close()
    after = site(text_reply("Eggs."))  # the app restarted: the tab's session is new to it, its state empty
    restarted = Tab()
    answer = after.page.respond("and the eggs", [], restarted, token=ann, open_id=tab.conversation_id)
    last = [update async for update in answer][-1]
    assert _content(last[0]) == "Eggs."
    sent = after.upstream.requests[0]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["remember the milk", "and the eggs"]
    redrawn = await after.page.redraw([], restarted, ann, tab.conversation_id)
    assert [_content(m) for m in redrawn if not titles([m])[0]] == [
        "remember the milk",
        "Milk.",
        "and the eggs",
        "Eggs.",
    ]


async def test_a_page_load_takes_the_browsers_visitor_and_open_chat(site):
    made = site(text_reply("Hello."))
    token = new_token()
    tab = place(Tab(), token, None, None)
    await made.answer(tab, "hi there")
    reloaded = Tab()
    (first, *_) = [view async for view in made.page.opened(reloaded, token, tab.conversation_id, None)]
    assert first[0] == token and reloaded == Tab(visitor_owner(token), tab.conversation_id)
    assert screen_text(first[1:])[:2] == ["hi there", "Hello."]


async def test_a_page_load_without_a_visitor_token_makes_a_new_one(site):
    made = site()
    tab = Tab()
    (first,) = [view async for view in made.page.opened(tab, "forged-or-missing", None, None)]
    assert is_token(first[0]) and tab.owner == visitor_owner(first[0])


def test_with_a_login_the_conversations_belong_to_the_username_on_every_browser():
    logged_in = SimpleNamespace(username="ann")
    from_one = place(Tab(), new_token(), None, logged_in)  # type: ignore[arg-type]
    from_another = place(Tab(), new_token(), None, logged_in)  # type: ignore[arg-type]
    assert from_one.owner == from_another.owner == user_owner("ann")


def test_a_script_with_no_token_is_a_visitor_for_its_session_alone():
    first, second = place(Tab(), None, None, None), place(Tab(), None, None, None)
    assert first.owner.startswith("visitor:") and first.owner != second.owner and not first.restored


async def test_on_an_offline_app_a_loaded_answer_from_claude_keeps_its_price():
    claude = Chat(text_reply("From Claude."))  # an answer Claude gave, as a loaded export brings it
    reply = await claude.send("q")
    offline = ChatService(claude.service.client, make_settings(force_offline=True))
    usage = next(m for m in ChatPage(offline, ServerSettings()).messages(reply.exchange) if m.metadata)
    assert usage.metadata["title"] == USAGE_TITLE
    assert OFFLINE_COST not in usage.metadata["log"] and "$" in usage.metadata["log"]
