"""Spend guards end to end: the real app refusing messages over the rate and over the day's budget."""

from __future__ import annotations

from gradio_client import Client

from tests.conftest import answer_text, chat, launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.test_security import notice
from tests.upstream import TEST_KEY, replies, text_reply


def test_a_session_over_its_message_rate_is_told_to_slow_down_and_others_are_not(tmp_path):
    with LoopbackMessagesAPI() as api:
        settings = make_settings(
            api_key=TEST_KEY, base_url=api.url, rate_limit_per_minute=2, data_dir=tmp_path / "data"
        )
        with launched_app(settings) as url:
            busy = Client(url, verbose=False)
            chat(busy, "one")
            chat(busy, "two")
            shown = notice(chat(busy, "three")[-1])
            assert "at most 2 messages a minute" in shown and "nothing was sent" in shown
            assert len(api.requests) == 2
            assert answer_text(chat(Client(url, verbose=False), "another tab")[-1]) == "You said: another tab"


def test_once_the_daily_token_budget_is_spent_every_session_is_refused(tmp_path):
    with LoopbackMessagesAPI(replies(text_reply("Hello.", input_tokens=950))) as api:
        settings = make_settings(
            api_key=TEST_KEY,
            base_url=api.url,
            max_tokens=100,
            daily_token_budget=1000,
            data_dir=tmp_path / "data",
        )
        with launched_app(settings) as url:
            assert answer_text(chat(Client(url, verbose=False), "hello")[-1]) == "Hello."  # 951 tokens
            shown = notice(chat(Client(url, verbose=False), "more please")[-1])
            assert "more than is left of this app's budget for today (49 of 1,000 tokens)" in shown
            assert "nothing was sent" in shown
            assert len(api.requests) == 1
