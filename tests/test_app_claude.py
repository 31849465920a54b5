"""Thinking, usage, caching, truncation and settings, end to end: the app, gradio_client, loopback API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client

from chat import Settings
from chat.wire import model_info
from tests.conftest import answer_text, boxes, chat, launched_app, make_settings, notice_in
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY, Failure, thinking_script
from ui.render import THINKING_TITLE, USAGE_TITLE


@pytest.fixture
def api() -> Iterator[LoopbackMessagesAPI]:
    with LoopbackMessagesAPI(thinking_script(usage_extra={"cache_read_input_tokens": 5_000})) as api:
        yield api


@pytest.fixture
def app_settings(api: LoopbackMessagesAPI, tmp_path: Path) -> Settings:
    return make_settings(api_key=TEST_KEY, base_url=api.url, data_dir=tmp_path / "data")


@pytest.fixture
def client(app_settings: Settings) -> Iterator[Client]:
    with launched_app(app_settings) as url:
        yield Client(url, verbose=False)


def test_thinking_streams_into_a_pending_box_then_a_done_box_above_the_answer(client, api):
    updates = chat(client, "hi", thinking=True)
    thinking_only = [u for u in updates if THINKING_TITLE in boxes(u) and not answer_text(u)]
    assert thinking_only and all(
        boxes(u)[THINKING_TITLE]["metadata"]["status"] == "pending" for u in thinking_only
    )
    final = updates[-1]
    thinking = boxes(final)[THINKING_TITLE]
    assert thinking["content"] == "I should answer turn 1."
    assert thinking["metadata"]["status"] == "done" and thinking["metadata"]["duration"] >= 0
    assert final.index(thinking) == 0 and answer_text(final) == "Answer 1: hi"
    assert final[-1]["metadata"]["title"] == USAGE_TITLE


def test_thinking_on_asks_the_api_for_adaptive_thinking(client, api):
    chat(client, "hi", thinking=True)
    assert api.requests[0]["thinking"] == {"type": "adaptive", "display": "summarized"}


def test_thinking_blocks_go_back_with_their_signature_and_display_boxes_never_do(client, api):
    chat(client, "first", thinking=True)
    chat(client, "second", thinking=True)
    assert api.requests[1]["messages"] == [
        {"role": "user", "content": "first"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should answer turn 1.", "signature": "sig-1"},
                {"type": "text", "text": "Answer 1: first"},
            ],
        },
        {"role": "user", "content": "second"},
    ]


def test_every_request_carries_top_level_cache_control(client, api):
    chat(client, "first")
    chat(client, "second")
    assert [request.get("cache_control") for request in api.requests] == [{"type": "ephemeral"}] * 2


def test_the_usage_line_shows_tokens_cache_reads_cost_and_speed(client, api):
    chat(client, "first")
    usage = boxes(chat(client, "second")[-1])[USAGE_TITLE]
    assert usage["metadata"]["status"] == "done"  # collapsed: a compact line under the answer
    log = usage["metadata"]["log"]
    assert "10 in" in log and "out" in log and "5,000 cache read" in log and "$" in log
    assert "s to first token" in log and "tokens/s" in log
    assert "This chat so far (2 answers" in usage["content"]


def test_an_answer_cut_off_at_max_tokens_is_marked_with_how_to_get_more(api, client):
    api.script = thinking_script(stop_reason="max_tokens")
    final = chat(client, "tell me everything", max_tokens=300)[-1]
    cut_off = boxes(final)["Cut off at max tokens"]
    assert "300" in cut_off["metadata"]["log"]
    assert "continue" in cut_off["content"] and "Max tokens" in cut_off["content"]
    assert answer_text(final) == "Answer 1: tell me everything"


def test_settings_panel_values_apply_from_the_next_request(client, api):
    chat(client, "defaults")
    chat(
        client,
        "changed",
        model="claude-haiku-5-5",
        system_prompt="Be brief.",
        max_tokens=50,
        thinking=True,
        effort="low",
    )
    first, second = api.requests
    assert (first["model"], first["max_tokens"]) == ("claude-sonnet-5-5", 4096)
    assert not {"system", "thinking", "output_config"} & first.keys()
    assert (second["model"], second["max_tokens"], second["system"]) == ("claude-haiku-5-5", 50, "Be brief.")
    assert second["thinking"]["type"] == "adaptive" and second["output_config"] == {"effort": "low"}


def test_a_bad_max_tokens_shows_a_clear_message(client, api):
    shown = notice_in(chat(client, "hi", max_tokens=0)[-1])
    assert "Max tokens must be a whole number above 0" in shown
    assert api.requests == []


def model_dropdown(url: str) -> dict[str, Any]:
    config = httpx.get(f"{url.rstrip('/')}/config", timeout=10).json()
    return next(c["props"] for c in config["components"] if c.get("props", {}).get("label") == "Model")


def test_the_model_menu_offers_the_models_the_api_lists(api, app_settings):
    api.models = [
        model_info("claude-sonnet-5-5", "Claude Sonnet 5.5"),
        model_info("claude-next-6", "Claude Next 6"),
    ]
    with launched_app(app_settings) as url:
        menu = model_dropdown(url)
        updates = chat(Client(url, verbose=False), "hi", model="claude-next-6")
    assert [choice[1] for choice in menu["choices"]] == ["claude-sonnet-5-5", "claude-next-6"]
    assert menu["value"] == "claude-sonnet-5-5"
    assert api.requests[0]["model"] == "claude-next-6" and answer_text(updates[-1])


def test_the_model_menu_falls_back_to_the_built_in_models_when_the_api_cannot_list(api, app_settings):
    api.models = Failure(500, "api_error", "listing is down")
    with launched_app(app_settings) as url:
        menu = model_dropdown(url)
    assert [choice[1] for choice in menu["choices"]] == [
        "claude-opus-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
    ]


def test_no_display_box_text_ever_reaches_the_api(client, api):
    chat(client, "first", thinking=True)
    api.script = thinking_script(stop_reason="max_tokens")
    chat(client, "second", thinking=True)
    chat(client, "third", thinking=True)
    sent = json.dumps(api.requests[-1]["messages"])
    assert "This chat so far" not in sent and "Cut off" not in sent and "tokens/s" not in sent


def test_the_offline_model_thinks_in_the_thinking_box_when_thinking_is_on(tmp_path):
    with launched_app(make_settings(force_offline=True, offline_delay=0.0, data_dir=tmp_path)) as url:
        final = chat(Client(url, verbose=False), "hello", thinking=True)[-1]
    assert "offline model" in boxes(final)[THINKING_TITLE]["content"]
    assert "offline demo model" in answer_text(final) and USAGE_TITLE in boxes(final)
