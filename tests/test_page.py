"""The page's handlers (ui/page.py) against a scripted upstream: what each does to the conversation."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from chat import Status
from tests.conftest import Chat
from tests.upstream import text_reply
from ui.page import ChatPage
from ui.server import ServerSettings

HISTORY_OF_ONE = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "One."}]


def page_for(chat: Chat) -> ChatPage:
    return ChatPage(chat.service, ServerSettings(update_interval=0.0))


async def test_an_export_during_an_answer_leaves_the_streaming_exchange_alone():
    chat = Chat(text_reply("One."), text_reply("Two ", "and ", "more.", delay=0.05))
    page = page_for(chat)
    await chat.send("first")
    answer = page.respond("second", list(HISTORY_OF_ONE), chat.conversation)
    await anext(answer)  # the second answer is streaming; the page's history still shows one turn
    exported = page.export(list(HISTORY_OF_ONE), chat.conversation)
    (json_file,) = [Path(f["path"]) for f in exported.value if f["path"].endswith(".json")]
    payload = json.loads(json_file.read_text())
    assert [e["prompt"]["text"] for e in payload["exchanges"]] == ["first"]
    async for _ in answer:
        pass
    assert [e.status for e in chat.conversation.exchanges] == [Status.COMPLETE, Status.COMPLETE]
    assert chat.conversation.exchanges[1].text == "Two and more."


async def test_an_answer_ends_on_its_own_exchange_even_if_the_chat_was_cleared_meanwhile():
    chat = Chat(text_reply("Still ", "mine.", delay=0.05))
    page = page_for(chat)
    answer = page.respond("hi", [], chat.conversation)
    await anext(answer)
    page.clear(chat.conversation)
    updates = [update async for update in answer]
    assert "Still mine." in [message.content for message in updates[-1]]


async def test_a_stop_receipt_is_not_drawn_over_an_exchange_that_replaced_the_stopped_one():
    chat = Chat(text_reply("Half ", "an ", "answer.", delay=0.2))
    page = page_for(chat)
    answer = page.respond("tell me", [], chat.conversation)
    await anext(answer)
    await answer.aclose()  # Stop: the stopped exchange is at position 0
    assert chat.conversation.last_reply is not None
    assert chat.conversation.last_reply.status is Status.STOPPED
    refused = page.respond("   ", [], chat.conversation)  # Retry, refused: a new exchange 0
    notice = [update async for update in refused][-1]
    shown_now = [{"role": "user", "content": "   "}, *(message.__dict__ for message in notice)]
    assert await page.redraw_stopped(shown_now, chat.conversation) == gr.skip()
