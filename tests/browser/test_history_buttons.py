"""Retry, Undo, Edit and Clear in the page keep what is sent to Claude (thinking included) in step."""

from __future__ import annotations

import pytest

from chat import Settings
from tests.browser.chat_page import ChatPage
from tests.browser.conftest import loopback_settings
from tests.conftest import assert_valid_history
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import thinking_script

FIRST_THOUGHT = {"type": "thinking", "thinking": "I should answer turn 1.", "signature": "sig-1"}


@pytest.fixture
def app_settings(loopback_api: LoopbackMessagesAPI, tmp_path) -> Settings:
    """Thinking on, so every answer carries a signed thinking block."""
    return loopback_settings(loopback_api, tmp_path / "data", thinking=True)


@pytest.fixture(autouse=True)
def thinking_answers(loopback_api: LoopbackMessagesAPI) -> None:
    """Answer n thinks 'I should answer turn n.' (signature 'sig-n'), then says 'Answer n: <message>'."""
    loopback_api.script = thinking_script()


def two_turns(chat_page: ChatPage) -> None:
    chat_page.send("first", "Answer 1: first")
    chat_page.send("second", "Answer 2: second")


def test_retry_sends_earlier_thinking_with_its_signature_but_not_the_retried_turn(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    two_turns(chat_page)
    chat_page.press("Retry")
    assert loopback_api.wait_for(lambda: len(loopback_api.requests) == 3, timeout=20), "Retry asked nothing"
    chat_page.wait_for_answer("Answer 2: second")

    assert loopback_api.requests[2]["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": [FIRST_THOUGHT, {"type": "text", "text": "Answer 1: first"}]},
        {"role": "user", "content": "second"},
    ]
    assert chat_page.answers() == ["Answer 1: first", "Answer 2: second"]


def test_undo_removes_the_last_turn_and_its_thinking_from_the_next_request(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    two_turns(chat_page)
    chat_page.press("Undo")
    chat_page.wait_for_text_gone("Answer 2")
    chat_page.send("third", "Answer 2: third")

    sent = loopback_api.requests[2]["messages"]
    assert [m["content"] if m["role"] == "user" else m["content"][0]["signature"] for m in sent] == [
        "first",
        "sig-1",
        "third",
    ]
    assert_valid_history(sent)


def test_editing_the_first_message_sends_it_alone(chat_page: ChatPage, loopback_api: LoopbackMessagesAPI):
    two_turns(chat_page)
    chat_page.edit_first_message("first, edited")
    chat_page.wait_for_answer("Answer 1: first, edited")

    assert loopback_api.requests[2]["messages"] == [{"role": "user", "content": "first, edited"}]
    assert chat_page.answers() == ["Answer 1: first, edited"]


def test_clear_starts_the_running_total_again(chat_page: ChatPage, loopback_api: LoopbackMessagesAPI):
    two_turns(chat_page)
    chat_page.press("Clear")
    chat_page.wait_for_text_gone("Answer 2")
    chat_page.send("third", "Answer 1: third")
    chat_page.open_box("Usage")

    chat_page.wait_for_text("This chat so far (1 answer,")
