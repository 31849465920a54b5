"""The models offered: from the API's model list with their capabilities, or the built-in list."""

from __future__ import annotations

import anthropic

from chat import ClientSettings, make_client
from chat.models import BUILT_IN_MODELS, DEFAULT_CONTEXT_WINDOW, ModelChoice, list_models, with_model
from chat.wire import model_info
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY, Failure


def loopback_client(api: LoopbackMessagesAPI) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=TEST_KEY, base_url=api.url, max_retries=0)


async def test_models_come_from_the_api_with_what_each_accepts():
    with LoopbackMessagesAPI() as api:
        api.models = [
            model_info("claude-new-6", "Claude New 6", ("low", "high"), can_disable_thinking=True),
            model_info("claude-plain", "Claude Plain"),
        ]
        models = await list_models(loopback_client(api))
    assert models == [
        ModelChoice("claude-new-6", "Claude New 6", ("low", "high"), can_disable_thinking=True),
        ModelChoice("claude-plain", "Claude Plain", (), can_disable_thinking=False),
    ]


async def test_retired_models_are_not_offered():
    with LoopbackMessagesAPI() as api:
        old = model_info("claude-old", "Claude Old") | {"lifecycle": "retired"}
        api.models = [model_info("claude-new-6", "Claude New 6"), old]
        models = await list_models(loopback_client(api))
    assert [m.id for m in models] == ["claude-new-6"]


async def test_a_failing_model_list_falls_back_to_the_built_in_models():
    with LoopbackMessagesAPI() as api:
        api.models = Failure(403, "permission_error", "no listing for this key")
        models = await list_models(loopback_client(api))
    assert models == list(BUILT_IN_MODELS)


async def test_the_built_in_models_are_the_current_claude_models():
    assert [m.id for m in BUILT_IN_MODELS] == ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"]


async def test_the_offline_model_lists_the_built_in_models():
    assert await list_models(make_client(ClientSettings(force_offline=True))) == list(BUILT_IN_MODELS)


def test_a_configured_model_missing_from_the_list_is_added_first():
    models = with_model(BUILT_IN_MODELS, "claude-custom-1")
    assert models[0] == ModelChoice("claude-custom-1", "claude-custom-1")
    assert with_model(BUILT_IN_MODELS, "claude-haiku-5-5") == list(BUILT_IN_MODELS)


async def test_the_listed_max_input_tokens_is_the_models_context_window():
    with LoopbackMessagesAPI() as api:
        api.models = [
            model_info("claude-new-6", "Claude New 6", max_input_tokens=123_456),
            model_info("claude-plain", "Claude Plain"),
        ]
        models = await list_models(loopback_client(api))
    assert [m.context_window for m in models] == [123_456, DEFAULT_CONTEXT_WINDOW]


def test_the_built_in_models_have_the_documented_one_million_token_window():
    assert {m.context_window for m in BUILT_IN_MODELS} == {1_000_000}
