"""Settings from the environment."""

from __future__ import annotations

import httpx2
import pytest

from chat import ChatError, Settings, make_client
from chat.config import DEFAULT_MODEL, read_env_file


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


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "\u00b2"])
def test_a_bad_max_tokens_says_what_is_wrong(value):
    with pytest.raises(ChatError, match="CHAT_MAX_TOKENS must be a whole number"):
        Settings.from_env({"CHAT_MAX_TOKENS": value})


def test_the_api_key_never_appears_in_the_repr():
    assert "sk-secret" not in repr(Settings(api_key="sk-secret"))


def test_a_dot_env_file_is_read_with_comments_export_and_quotes(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment\n\nCHAT_MODEL=claude-haiku-5-5  # inline note\n"
        'export CHAT_SYSTEM_PROMPT="Be brief. # really"\n'
        "CHAT_OFFLINE='1'\nnot a setting\n"
    )
    assert read_env_file(env_file) == {
        "CHAT_MODEL": "claude-haiku-5-5",
        "CHAT_SYSTEM_PROMPT": "Be brief. # really",
        "CHAT_OFFLINE": "1",
    }


def test_no_dot_env_file_means_no_values(tmp_path):
    assert read_env_file(tmp_path / ".env") == {}


def test_reliability_and_spend_settings_have_documented_defaults():
    settings = Settings.from_env({})
    assert (settings.max_retries, settings.read_timeout, settings.max_input_chars) == (2, 30.0, 50_000)
    assert (settings.rate_limit_per_minute, settings.daily_token_budget) == (20, 2_000_000)
    assert settings.auth is None


def test_reliability_and_spend_settings_are_read():
    settings = Settings.from_env(
        {
            "CHAT_MAX_RETRIES": "0",
            "CHAT_READ_TIMEOUT": "2.5",
            "CHAT_MAX_INPUT_CHARS": "1000",
            "CHAT_RATE_LIMIT_PER_MINUTE": "0",
            "CHAT_DAILY_TOKEN_BUDGET": "500",
        }
    )
    assert (settings.max_retries, settings.read_timeout, settings.max_input_chars) == (0, 2.5, 1000)
    assert (settings.rate_limit_per_minute, settings.daily_token_budget) == (0, 500)


@pytest.mark.parametrize(
    "name", ["CHAT_MAX_RETRIES", "CHAT_RATE_LIMIT_PER_MINUTE", "CHAT_DAILY_TOKEN_BUDGET"]
)
@pytest.mark.parametrize("value", ["-1", "many", "2.5", "\u00b2"])
def test_a_bad_count_says_what_is_wrong(name, value):
    with pytest.raises(ChatError, match=f"{name} must be a whole number"):
        Settings.from_env({name: value})


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf", "nan"])
def test_a_bad_read_timeout_says_what_is_wrong(value):
    with pytest.raises(ChatError, match="CHAT_READ_TIMEOUT must be a number of seconds above 0"):
        Settings.from_env({"CHAT_READ_TIMEOUT": value})


def test_a_username_and_password_turn_on_the_password():
    settings = Settings.from_env({"APP_USERNAME": "ada", "APP_PASSWORD": "s3cret pass"})
    assert settings.auth == ("ada", "s3cret pass")
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize("env", [{"APP_USERNAME": "ada"}, {"APP_PASSWORD": "s3cret"}])
def test_half_a_password_setting_is_refused(env):
    with pytest.raises(ChatError, match="Set both APP_USERNAME and APP_PASSWORD"):
        Settings.from_env(env)


def test_the_client_gets_the_read_timeout_and_retries():
    client = make_client(Settings(api_key="sk-x", read_timeout=7.5, max_retries=4))
    assert isinstance(client.timeout, httpx2.Timeout)
    assert (client.timeout.read, client.max_retries) == (7.5, 4)


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
