"""Spend guards end to end: the real app refusing messages over the rate and over the day's budget."""

from __future__ import annotations

from gradio_client import Client

from tests.conftest import answer_text, chat, launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.test_security import notice
from tests.upstream import TEST_KEY


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
    with LoopbackMessagesAPI() as api:
        settings = make_settings(
            api_key=TEST_KEY, base_url=api.url, daily_token_budget=10, data_dir=tmp_path / "data"
        )
        with launched_app(settings) as url:
            assert (
                answer_text(chat(Client(url, verbose=False), "hello")[-1]) == "You said: hello"
            )  # spends 10 + 3 tokens
            shown = notice(chat(Client(url, verbose=False), "more please")[-1])
            assert "used its token budget for today (10 tokens)" in shown
            assert len(api.requests) == 1
