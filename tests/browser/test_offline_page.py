"""The page on the offline demo model (no key), as a new visitor meets it: canned replies, no cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat import Settings
from tests.browser.chat_page import ChatPage
from tests.conftest import make_settings
from ui.page import STARTER_PROMPTS
from ui.render import OFFLINE_COST, USAGE_TITLE


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    """No key: the offline model answers (fast, so the tests wait little)."""
    return make_settings(force_offline=True, offline_delay=0.005, data_dir=tmp_path / "data")


def test_an_offline_receipt_says_it_costs_nothing(sized_chat_page: ChatPage):
    sized_chat_page.ask("hello")
    sized_chat_page.wait_for_text("offline demo model")
    sized_chat_page.wait_until_idle()
    sized_chat_page.page.locator(".title", has_text=USAGE_TITLE).last.wait_for()
    receipt = sized_chat_page.reply_parts()[-1]
    assert receipt.title == USAGE_TITLE and OFFLINE_COST in receipt.note, receipt
    sized_chat_page.open_box(USAGE_TITLE)
    assert "$" not in sized_chat_page.reply_text(), "an offline reply costs nothing: no dollar figure"


def test_a_starter_prompt_gets_the_offline_models_answer(sized_chat_page: ChatPage):
    sized_chat_page.page.locator("#chat button.example", has_text=STARTER_PROMPTS[1]).click()
    sized_chat_page.wait_for_text(f"You asked: \u201c{STARTER_PROMPTS[1]}\u201d")
    sized_chat_page.wait_until_idle()
    assert sized_chat_page.page.locator("#chat button.example").count() == 0  # the chat took its place
