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


def test_capacity_and_pacing_have_deliberate_defaults():
    settings = Settings.from_env({})
    assert (settings.update_interval, settings.max_streams) == (0.05, 100)
    assert (settings.concurrency_limit, settings.max_threads, settings.queue_size) == (100, 200, 200)


def test_capacity_and_pacing_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "CHAT_UPDATE_INTERVAL": "0.03",
            "CHAT_MAX_STREAMS": "7",
            "APP_CONCURRENCY_LIMIT": "8",
            "APP_MAX_THREADS": "9",
            "APP_QUEUE_SIZE": "10",
        }
    )
    assert (settings.update_interval, settings.max_streams) == (0.03, 7)
    assert (settings.concurrency_limit, settings.max_threads, settings.queue_size) == (8, 9, 10)


def test_threads_default_to_twice_the_concurrency_limit():
    assert Settings.from_env({"APP_CONCURRENCY_LIMIT": "150"}).max_threads == 300


def test_fewer_threads_than_the_concurrency_limit_is_refused():
    expected = r"APP_MAX_THREADS \(10\) must be at least APP_CONCURRENCY_LIMIT \(20\)"
    with pytest.raises(ChatError, match=expected):
        Settings.from_env({"APP_CONCURRENCY_LIMIT": "20", "APP_MAX_THREADS": "10"})


CAPACITY_NAMES = ["CHAT_MAX_STREAMS", "APP_CONCURRENCY_LIMIT", "APP_MAX_THREADS", "APP_QUEUE_SIZE"]


@pytest.mark.parametrize("name", CAPACITY_NAMES)
def test_a_bad_capacity_says_which_setting_is_wrong(name):
    with pytest.raises(ChatError, match=f"{name} must be a whole number above 0, not '0'"):
        Settings.from_env({name: "0"})


def test_a_bad_update_interval_says_what_is_wrong():
    with pytest.raises(ChatError, match="CHAT_UPDATE_INTERVAL must be a number of seconds"):
        Settings.from_env({"CHAT_UPDATE_INTERVAL": "soon"})
