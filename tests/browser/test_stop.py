"""Stop in the page: the partial answer stays, the upstream stream closes, a receipt says what arrived."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chat import Settings
from chat.wire import ScriptedMessage, TextBlock, ThinkingBlock, split_into_chunks
from tests.browser.chat_page import ChatPage
from tests.browser.conftest import loopback_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import Stream, echo_reply, thinking_script
from ui.render import STOPPED_TITLE

LONG_ANSWER = " ".join(f"word{number}" for number in range(400))


@pytest.fixture
def app_settings(loopback_api: LoopbackMessagesAPI, tmp_path) -> Settings:
    """Thinking on: a stopped reply's unfinished thinking must not be sent back."""
    return loopback_settings(loopback_api, tmp_path / "data", thinking=True)


def slow_long_answer(body: dict[str, Any]) -> Stream:
    """A short thought, then a long answer two words at a time."""
    blocks = [
        ThinkingBlock(["Counting."], signature="sig-long"),
        TextBlock(split_into_chunks(LONG_ANSWER, 2)),
    ]
    return Stream.of(ScriptedMessage(blocks), delay=0.05)


def stop_after_word_20(chat_page: ChatPage) -> None:
    """Ask for the long answer and press Stop once word20 shows."""
    chat_page.ask("count to 400")
    chat_page.wait_for_text("word20")
    chat_page.press_stop()


def test_stop_keeps_the_partial_answer_and_closes_the_upstream_stream(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    long_answer = " ".join(f"word{number}" for number in range(600))
    loopback_api.script = lambda body: echo_reply(long_answer, delay=0.05, words_per_chunk=2)
    chat_page.ask("Write something very long.")
    chat_page.watch_answers(until=lambda answers: len(" ".join(answers).split()) >= 10)

    chat_page.press_stop()
    clicked_at = time.monotonic()
    exchange = loopback_api.exchanges[0]
    assert loopback_api.wait_for(lambda: exchange.client_left_at is not None, timeout=10), (
        "the upstream connection stayed open after Stop"
    )
    chat_page.wait_until_idle()
    chat_page.wait_for_text("tokens received")  # the receipt: the last redraw of the stopped reply
    stopped = chat_page.answer()
    chat_page.page.wait_for_timeout(1000)  # a second in which a still-open stream would have grown it

    assert exchange.finished_at is None and exchange.client_left_at >= clicked_at - 1.0
    assert chat_page.answer() == stopped, "the answer kept growing after Stop"
    assert stopped and long_answer.startswith(stopped) and len(stopped) < len(long_answer)


def test_a_stopped_answer_is_marked_stopped_with_the_tokens_received(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    loopback_api.script = slow_long_answer
    stop_after_word_20(chat_page)
    chat_page.wait_for_text("tokens received")

    assert STOPPED_TITLE in chat_page.boxes()
    shown = chat_page.reply_text()
    assert "word20" in shown and "word399" not in shown
    assert loopback_api.wait_for(lambda: loopback_api.exchanges[0].client_left_at is not None)


def test_the_answer_sent_back_after_a_stop_is_the_text_the_page_shows(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    loopback_api.script = slow_long_answer
    stop_after_word_20(chat_page)
    chat_page.wait_for_text("tokens received")
    shown = chat_page.answer()
    loopback_api.script = thinking_script()
    chat_page.send("go on", "Answer 2: go on")

    answer = loopback_api.requests[1]["messages"][1]["content"]
    assert len(answer) == 1 and answer[0]["type"] == "text", "unfinished thinking or the receipt was sent"
    assert answer[0]["text"].split() == shown.split(), "the answer sent back is not the one shown"
    assert "tokens received" in chat_page.reply_text(0)  # the receipt stays
