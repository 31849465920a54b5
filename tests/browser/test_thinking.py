"""Extended thinking in the page: the thought streams into a box of its own, above the answer."""

from __future__ import annotations

import re

import pytest

from chat import Settings
from chat.wire import ScriptedMessage, TextBlock, ThinkingBlock, split_into_chunks
from tests.browser.chat_page import ChatPage
from tests.browser.conftest import loopback_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import Stream
from ui.render import THINKING_TITLE

THOUGHT = (
    "The user asks why the sky is blue. Rayleigh scattering is the key: air molecules scatter short "
    "wavelengths far more than long ones. I should explain it simply, then say why sunsets are red, "
    "since that follows from the same idea."
)
QUESTION = "Why is the sky blue?"
ANSWER = "Air scatters blue light much more than red, so blue reaches your eye from all over the sky."


@pytest.fixture
def app_settings(loopback_api: LoopbackMessagesAPI, tmp_path) -> Settings:
    """Thinking on, as the Settings panel's thinking checkbox turns it on."""
    return loopback_settings(loopback_api, tmp_path / "data", thinking=True)


def thinking_then_answer(body: dict) -> Stream:
    """Block 0 thinks (thinking deltas, then its signature), block 1 answers."""
    blocks = [ThinkingBlock(split_into_chunks(THOUGHT, 2)), TextBlock(split_into_chunks(ANSWER, 3))]
    return Stream.of(ScriptedMessage(blocks), delay=0.08)


def test_a_thinking_stream_shows_a_collapsible_thinking_box_above_the_answer(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    loopback_api.script = thinking_then_answer
    chat_page.ask(QUESTION)
    chat_page.wait_for_text("Rayleigh scattering")  # the thought, a third of the way through
    while_thinking = chat_page.reply_parts()
    chat_page.wait_for_answer(ANSWER)
    after = chat_page.reply_parts()

    thinking = while_thinking[0]
    assert thinking.title == THINKING_TITLE and thinking.pending and thinking.open, while_thinking
    assert THOUGHT.startswith(thinking.text.strip()) and "Rayleigh scattering" in thinking.text, (
        while_thinking
    )
    assert len(while_thinking) == 1, f"more than the thinking box while thinking: {while_thinking}"
    box, answer = after[0], after[1]
    assert box.title == THINKING_TITLE and not box.pending and not box.open, after
    assert re.fullmatch(r"\(\d+(\.\d+)?m?s\)", box.note), f"the box shows no duration: {box.note!r}"
    assert answer.title == "" and answer.text == ANSWER, after
    assert chat_page.answers() == [ANSWER]  # the thought is not part of the answer

    chat_page.open_box(THINKING_TITLE)
    chat_page.wait_for_text(THOUGHT)
    assert chat_page.reply_parts()[0].text.strip() == THOUGHT
