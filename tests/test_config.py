"""Settings from the environment."""

from __future__ import annotations

import pytest

from chat import ChatError, Settings
from chat.config import DEFAULT_MODEL


def test_defaults_with_an_empty_environment_use_the_offline_model():
    settings = Settings.from_env({})
    assert settings.offline and settings.model == DEFAULT_MODEL and settings.max_tokens == 4096


def test_a_key_turns_the_offline_model_off():
    assert not Settings.from_env({"ANTHROPIC_API_KEY": "sk-x"}).offline


def test_chat_offline_forces_the_offline_model_even_with_a_key():
    assert Settings.from_env({"ANTHROPIC_API_KEY": "sk-x", "CHAT_OFFLINE": "true"}).offline


def test_model_max_tokens_system_prompt_and_base_url_are_read():
    settings = Settings.from_env(
        {
            "CHAT_MODEL": "claude-haiku-5-5",
            "CHAT_MAX_TOKENS": "512",
            "CHAT_SYSTEM_PROMPT": "Be brief.",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        }
    )
    assert (settings.model, settings.max_tokens, settings.system_prompt) == (
        "claude-haiku-5-5",
        512,
        "Be brief.",
    )
    assert settings.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_a_bad_max_tokens_says_what_is_wrong(value):
    with pytest.raises(ChatError, match="CHAT_MAX_TOKENS must be a whole number"):
        Settings.from_env({"CHAT_MAX_TOKENS": value})


def test_the_api_key_never_appears_in_the_repr():
    assert "sk-secret" not in repr(Settings(api_key="sk-secret"))


def test_thinking_effort_and_prompt_caching_are_read():
    settings = Settings.from_env({"CHAT_THINKING": "1", "CHAT_EFFORT": "xhigh", "CHAT_PROMPT_CACHING": "off"})
    assert (settings.thinking, settings.effort, settings.prompt_caching) == (True, "xhigh", False)


def test_thinking_is_off_effort_is_the_models_and_caching_is_on_by_default():
    settings = Settings.from_env({})
    assert (settings.thinking, settings.effort, settings.prompt_caching) == (False, None, True)


def test_a_bad_effort_says_what_is_wrong():
    with pytest.raises(ChatError, match="CHAT_EFFORT must be one of low, medium, high, xhigh, max"):
        Settings.from_env({"CHAT_EFFORT": "turbo"})


def test_a_bad_flag_says_what_is_wrong():
    with pytest.raises(ChatError, match="CHAT_THINKING must be 1 or 0"):
        Settings.from_env({"CHAT_THINKING": "maybe"})
