"""A failure seen in the page: the partial answer stays, a notice says what happened, Retry asks again."""

from __future__ import annotations

import dataclasses
import re

import pytest

import app
from chat import Settings
from tests.browser.chat_page import ChatPage
from tests.browser.conftest import loopback_settings
from tests.conftest import assert_valid_history
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import error_mid_stream, replies

QUESTION = "Why is the sky blue?"
PARTIAL = "The first part of the answer arrives before Claude"


@pytest.fixture
def app_settings(loopback_api: LoopbackMessagesAPI, tmp_path) -> Settings:
    """No SDK retries: the failure reaches the page at once."""
    return loopback_settings(loopback_api, tmp_path / "data", max_retries=0)


def test_an_overload_mid_stream_keeps_the_partial_answer_and_retry_asks_again(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    overloaded = dataclasses.replace(error_mid_stream(PARTIAL), delay=0.05)  # the text, then the error
    loopback_api.script = replies(overloaded)  # then echoes
    chat_page.ask(QUESTION)

    chat_page.page.locator(".title", has_text=app.NOTICE_TITLE).wait_for()  # said once, in the chat
    chat_page.wait_until_idle()  # the message box is usable again: no reload needed to go on
    assert chat_page.page.get_by_test_id("toast-text").count() == 0, "no toast repeats the notice"
    assert chat_page.message_box().is_enabled()
    assert chat_page.answer() == PARTIAL
    assert chat_page.boxes()[-1] == app.NOTICE_TITLE
    assert re.search(r"overloaded mid-answer", chat_page.reply_text(), re.IGNORECASE)

    chat_page.press("Retry")
    chat_page.wait_for_answer(f"You said: {QUESTION}")
    assert chat_page.answers() == [f"You said: {QUESTION}"], "Retry must replace the failed reply"
    assert app.NOTICE_TITLE not in chat_page.boxes()
    assert loopback_api.requests[-1]["messages"] == [{"role": "user", "content": QUESTION}]
    assert_valid_history(loopback_api.requests[-1]["messages"])
