"""The context meter end to end: the real app on a loopback API whose model has a 1,000-token window."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gradio_client import Client

from chat.models import ALL_EFFORT_LEVELS
from chat.wire import model_info
from tests.conftest import boxes, chat, launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.test_security import notice
from tests.upstream import TEST_KEY, replies, text_reply


@contextmanager
def nearly_full_app(data: Path, counted: int) -> Iterator[tuple[Client, LoopbackMessagesAPI]]:
    """The app whose first answer fills 851 of a 1,000-token window; count_tokens says `counted`."""
    with LoopbackMessagesAPI(replies(text_reply("Hello.", input_tokens=850))) as api:
        api.models = [
            model_info("claude-sonnet-5-5", "Claude Sonnet 5.5", ALL_EFFORT_LEVELS, max_input_tokens=1_000)
        ]
        api.count = lambda body: counted
        settings = make_settings(api_key=TEST_KEY, base_url=api.url, max_tokens=100, data_dir=data)
        with launched_app(settings) as url:
            yield Client(url, verbose=False), api


def test_a_receipt_past_eighty_percent_warns_that_the_context_is_nearly_full(tmp_path):
    with nearly_full_app(tmp_path / "data", counted=851) as (client, _):
        shown = boxes(chat(client, "hello")[-1])
        assert "Context: 851 of 1k tokens" in shown["Usage"]["metadata"]["log"]
        assert "Start a new chat (or undo earlier turns)" in shown["\u26a0\ufe0f Context 85% full"]["content"]


def test_a_message_that_would_not_fit_is_refused_and_nothing_reaches_claude(tmp_path):
    with nearly_full_app(tmp_path / "data", counted=960) as (client, api):
        chat(client, "hello")
        shown = notice(chat(client, "and one more thing")[-1])
        assert "the conversation is 960 tokens long; with up to 100 more for the answer" in shown
        assert "1,000-token context window" in shown and "Nothing was sent" in shown
        assert "Start a new chat, undo earlier turns" in shown
        assert len(api.counted) == 1 and api.counted[0]["messages"][-1]["content"] == "and one more thing"
        assert len(api.requests) == 1  # the first message only
