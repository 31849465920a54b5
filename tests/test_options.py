"""Per-turn options and the request they make: caching, thinking, effort, system prompt."""

from __future__ import annotations

import pytest

from chat import ChatError, Prompt
from chat.models import BUILT_IN_MODELS, ModelChoice
from chat.options import TurnOptions
from tests.conftest import Chat, make_settings
from tests.upstream import TEST_KEY, text_reply

OPTIONS = TurnOptions(model="claude-sonnet-5-5", max_tokens=100)


def request(options: TurnOptions, models: list[ModelChoice] | None = None) -> dict:
    chat = Chat(models=models or BUILT_IN_MODELS)
    return chat.service.request(chat.conversation, options, Prompt("hi"))


def test_requests_use_automatic_prompt_caching_by_default():
    assert request(OPTIONS)["cache_control"] == {"type": "ephemeral"}


def test_prompt_caching_can_be_turned_off():
    assert "cache_control" not in request(TurnOptions(model="m", max_tokens=5, prompt_caching=False))


def test_thinking_on_asks_for_adaptive_thinking_with_its_text():
    sent = request(TurnOptions(model="claude-sonnet-5-5", max_tokens=100, thinking=True))
    assert sent["thinking"] == {"type": "adaptive", "display": "summarized"}


def test_thinking_off_disables_it_where_the_model_allows():
    models = [ModelChoice("m-off", "M", can_disable_thinking=True)]
    assert request(TurnOptions(model="m-off", max_tokens=5), models)["thinking"] == {"type": "disabled"}


def test_thinking_off_leaves_the_field_out_where_the_model_cannot_disable_it():
    assert "thinking" not in request(TurnOptions(model="claude-opus-5-5", max_tokens=5))


def test_effort_is_sent_where_the_model_supports_that_level():
    sent = request(TurnOptions(model="claude-haiku-5-5", max_tokens=5, effort="low"))
    assert sent["output_config"] == {"effort": "low"}


def test_effort_is_left_out_for_a_model_that_does_not_support_it():
    models = [ModelChoice("plain", "Plain", effort_levels=("high",))]
    assert "output_config" not in request(TurnOptions(model="plain", max_tokens=5, effort="low"), models)
    assert "output_config" not in request(TurnOptions(model="unknown-model", max_tokens=5, effort="low"))


def test_no_temperature_is_ever_sent():
    sent = request(TurnOptions(model="claude-sonnet-5-5", max_tokens=5, thinking=True, effort="max"))
    assert not {"temperature", "top_p", "top_k"} & sent.keys()


async def test_options_default_to_the_settings():
    settings = make_settings(
        api_key=TEST_KEY,
        model="claude-haiku-5-5",
        max_tokens=77,
        system_prompt="Hi",
        thinking=True,
        effort="high",
    )
    chat = Chat(text_reply("ok"), settings=settings)
    await chat.send("hello")  # no options given: the settings' defaults
    sent = chat.requests[0]
    assert (sent["model"], sent["max_tokens"], sent["system"]) == ("claude-haiku-5-5", 77, "Hi")
    assert (sent["thinking"]["type"], sent["output_config"], sent["cache_control"]) == (
        "adaptive",
        {"effort": "high"},
        {"type": "ephemeral"},
    )


@pytest.mark.parametrize("max_tokens", [0, -1, 2.5, None, True])
def test_a_bad_max_tokens_is_refused_with_a_clear_message(max_tokens):
    with pytest.raises(ChatError, match="Max tokens must be a whole number"):
        TurnOptions(model="m", max_tokens=max_tokens)


def test_an_unknown_effort_is_refused_with_a_clear_message():
    with pytest.raises(ChatError, match="Effort must be one of low, medium"):
        TurnOptions(model="m", max_tokens=5, effort="extreme")


async def test_each_turn_uses_its_own_options():
    chat = Chat(text_reply("a"), text_reply("b"))
    await chat.send("one", options=TurnOptions(model="claude-opus-5-5", max_tokens=10, system_prompt="S1"))
    await chat.send("two", options=TurnOptions(model="claude-haiku-5-5", max_tokens=20, thinking=True))
    first, second = chat.requests
    assert (first["model"], first["max_tokens"], first["system"]) == ("claude-opus-5-5", 10, "S1")
    assert (second["model"], second["max_tokens"], "system" in second) == ("claude-haiku-5-5", 20, False)
    assert "thinking" not in first and second["thinking"]["type"] == "adaptive"


async def test_thinking_blocks_go_back_while_the_system_prompt_is_unchanged():
    chat = Chat(text_reply("42", thinking="Hmm."), text_reply("ok"))
    await chat.send("q1", options=TurnOptions(model="m", max_tokens=5, system_prompt="Be brief."))
    await chat.send("q2", options=TurnOptions(model="m", max_tokens=5, system_prompt="Be brief."))
    assert chat.requests[1]["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Hmm.",
        "signature": "sig",
    }


async def test_thinking_blocks_from_under_another_system_prompt_are_left_out():
    # A thinking block is only valid after the exact prefix (system prompt included) it came from.
    chat = Chat(text_reply("42", thinking="Hmm."), text_reply("ok"))
    await chat.send("q1", options=TurnOptions(model="m", max_tokens=5, system_prompt="Be brief."))
    await chat.send("q2", options=TurnOptions(model="m", max_tokens=5, system_prompt="Be thorough."))
    assert chat.requests[1]["messages"][1]["content"] == [{"type": "text", "text": "42"}]
    assert chat.conversation.exchanges[0].content[0]["type"] == "thinking"  # kept for the old prompt
