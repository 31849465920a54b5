"""Settings from the environment, each part checked where it is read, and .env loading at the entry points."""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import httpx2
import pytest

import app
import chat.cli
from chat import ChatError, ClientSettings, Guards, Settings, TurnOptions, make_client
from chat.config import DEFAULT_MODEL
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY
from ui.server import SPACES_PROXIES, ServerSettings

ROOT = Path(__file__).parent.parent
OURS = ("ANTHROPIC_", "CHAT_", "APP_")


# --- the whole: Settings ---------------------------------------------------------------------------


def test_defaults_with_an_empty_environment_use_the_offline_model():
    settings = Settings.from_env({})
    assert settings.offline and settings.defaults.model == DEFAULT_MODEL
    assert settings.defaults.max_tokens == 4096


def test_a_key_turns_the_offline_model_off():
    assert not Settings.from_env({"ANTHROPIC_API_KEY": "sk-x"}).offline


def test_chat_offline_forces_the_offline_model_even_with_a_key():
    assert Settings.from_env({"ANTHROPIC_API_KEY": "sk-x", "CHAT_OFFLINE": "true"}).offline


def test_model_max_tokens_system_prompt_and_base_url_are_read_into_their_parts():
    settings = Settings.from_env(
        {
            "CHAT_MODEL": "claude-haiku-5-5",
            "CHAT_MAX_TOKENS": "512",
            "CHAT_SYSTEM_PROMPT": "Be brief.",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        }
    )
    defaults = settings.defaults
    assert (defaults.model, defaults.max_tokens, defaults.system_prompt) == (
        "claude-haiku-5-5",
        512,
        "Be brief.",
    )
    assert settings.client.base_url == "http://127.0.0.1:9"


def test_the_data_folder_defaults_to_data_and_is_read():
    assert Settings.from_env({}).data_dir == Path("data")
    assert Settings.from_env({"CHAT_DATA_DIR": "/srv/chat"}).data_dir == Path("/srv/chat")


def test_conversations_are_kept_in_a_sqlite_file_in_the_data_folder_by_default():
    assert Settings.from_env({}).database_url == "sqlite:///data/chats.db"
    assert Settings.from_env({"CHAT_DATA_DIR": "/srv/chat"}).database_url == "sqlite:////srv/chat/chats.db"


def test_a_database_url_selects_another_store_and_stays_out_of_the_repr():
    url = "postgresql://chat:s3cret@127.0.0.1:5432/chat"
    settings = Settings.from_env({"CHAT_DATABASE_URL": url})
    assert settings.database_url == url and "s3cret" not in repr(settings)


def test_a_database_url_of_another_kind_stops_the_start():
    with pytest.raises(ChatError, match="must be SQLite or PostgreSQL, not mysql"):
        Settings.from_env({"CHAT_DATABASE_URL": "mysql://127.0.0.1/chat"})


def test_retention_and_the_per_visitor_stream_cap_have_documented_defaults():
    settings = Settings.from_env({})
    assert (settings.retention_days, settings.guards.max_streams_per_visitor) == (30, 2)
    changed = Settings.from_env({"CHAT_RETENTION_DAYS": "0", "CHAT_MAX_STREAMS_PER_VISITOR": "5"})
    assert (changed.retention_days, changed.guards.max_streams_per_visitor) == (0, 5)


def test_on_a_space_without_persistent_storage_the_data_stays_in_the_app_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("chat.config.SPACES_DATA_DIR", tmp_path / "not-mounted")
    assert Settings.from_env({"SYSTEM": "spaces"}).data_dir == Path("data")


def test_on_a_space_with_persistent_storage_the_data_goes_to_it(tmp_path, monkeypatch):
    monkeypatch.setattr("chat.config.SPACES_DATA_DIR", tmp_path)
    assert Settings.from_env({"SYSTEM": "spaces"}).data_dir == tmp_path
    assert Settings.from_env({}).data_dir == Path("data")  # only on a Space


# --- the client: ClientSettings --------------------------------------------------------------------


def test_the_api_key_never_appears_in_the_repr():
    client = ClientSettings(api_key="sk-secret", bedrock_api_key="bedrock-secret")
    assert "sk-secret" not in repr(client) and "bedrock-secret" not in repr(client)
    assert "sk-secret" not in repr(Settings(client=client))


def test_reliability_settings_have_documented_defaults():
    client = ClientSettings.from_env({})
    assert (client.max_retries, client.read_timeout) == (2, 30.0)


def test_reliability_settings_are_read():
    client = ClientSettings.from_env({"CHAT_MAX_RETRIES": "0", "CHAT_READ_TIMEOUT": "2.5"})
    assert (client.max_retries, client.read_timeout) == (0, 2.5)


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf", "nan"])
def test_a_bad_read_timeout_says_what_is_wrong(value):
    with pytest.raises(ChatError, match="CHAT_READ_TIMEOUT must be a number of seconds above 0"):
        ClientSettings.from_env({"CHAT_READ_TIMEOUT": value})


def test_the_client_gets_the_read_timeout_and_retries():
    client = make_client(ClientSettings(api_key="sk-x", read_timeout=7.5, max_retries=4))
    assert isinstance(client.timeout, httpx2.Timeout)
    assert (client.timeout.read, client.max_retries) == (7.5, 4)


# --- the turn defaults: TurnOptions ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "\u00b2"])
def test_a_bad_max_tokens_says_what_is_wrong(value):
    with pytest.raises(ChatError, match="CHAT_MAX_TOKENS must be a whole number"):
        TurnOptions.from_env({"CHAT_MAX_TOKENS": value})


def test_thinking_effort_and_prompt_caching_are_read():
    defaults = TurnOptions.from_env(
        {"CHAT_THINKING": "1", "CHAT_EFFORT": "xhigh", "CHAT_PROMPT_CACHING": "off"}
    )
    assert (defaults.thinking, defaults.effort, defaults.prompt_caching) == (True, "xhigh", False)


def test_thinking_is_off_effort_is_the_models_and_caching_is_on_by_default():
    defaults = Settings.from_env({}).defaults
    assert (defaults.thinking, defaults.effort, defaults.prompt_caching) == (False, None, True)


def test_a_bad_effort_says_what_is_wrong():
    with pytest.raises(ChatError, match="CHAT_EFFORT must be one of low, medium, high, xhigh, max"):
        TurnOptions.from_env({"CHAT_EFFORT": "turbo"})


def test_a_bad_flag_says_what_is_wrong():
    with pytest.raises(ChatError, match="CHAT_THINKING must be 1 or 0"):
        TurnOptions.from_env({"CHAT_THINKING": "maybe"})


# --- the guards: Guards ------------------------------------------------------------------------------


def test_spend_guards_have_documented_defaults():
    guards = Settings.from_env({}).guards
    assert (guards.max_input_chars, guards.rate_limit_per_minute) == (50_000, 20)
    assert (guards.daily_token_budget, guards.max_streams) == (2_000_000, 100)


def test_spend_guards_are_read():
    guards = Guards.from_env(
        {
            "CHAT_MAX_INPUT_CHARS": "1000",
            "CHAT_RATE_LIMIT_PER_MINUTE": "0",
            "CHAT_DAILY_TOKEN_BUDGET": "500",
            "CHAT_MAX_STREAMS": "7",
        }
    )
    assert (guards.max_input_chars, guards.rate_limit_per_minute) == (1000, 0)
    assert (guards.daily_token_budget, guards.max_streams) == (500, 7)


@pytest.mark.parametrize(
    ("name", "reader"),
    [
        ("CHAT_MAX_RETRIES", ClientSettings.from_env),
        ("CHAT_RATE_LIMIT_PER_MINUTE", Guards.from_env),
        ("CHAT_DAILY_TOKEN_BUDGET", Guards.from_env),
    ],
)
@pytest.mark.parametrize("value", ["-1", "many", "2.5", "\u00b2"])
def test_a_bad_count_says_what_is_wrong(name, reader, value):
    with pytest.raises(ChatError, match=f"{name} must be a whole number"):
        reader({name: value})


# --- the web server: ServerSettings -------------------------------------------------------------


def test_the_page_is_open_by_default():
    assert ServerSettings.from_env({}).auth is None


def test_a_username_and_password_turn_on_the_password():
    server = ServerSettings.from_env({"APP_USERNAME": "ada", "APP_PASSWORD": "s3cret pass"})
    assert server.auth == ("ada", "s3cret pass")
    assert "s3cret" not in repr(server)


@pytest.mark.parametrize("environ", [{"APP_USERNAME": "ada"}, {"APP_PASSWORD": "s3cret"}])
def test_half_a_password_setting_is_refused(environ):
    with pytest.raises(ChatError, match="Set both APP_USERNAME and APP_PASSWORD"):
        ServerSettings.from_env(environ)


def test_capacity_and_pacing_have_deliberate_defaults():
    server = ServerSettings.from_env({})
    assert (server.update_interval, Settings.from_env({}).guards.max_streams) == (0.05, 100)
    assert (server.concurrency_limit, server.max_threads, server.queue_size) == (100, 200, 200)


def test_capacity_and_pacing_are_read_from_the_environment():
    server = ServerSettings.from_env(
        {
            "CHAT_UPDATE_INTERVAL": "0.03",
            "APP_CONCURRENCY_LIMIT": "8",
            "APP_MAX_THREADS": "9",
            "APP_QUEUE_SIZE": "10",
        }
    )
    assert server.update_interval == 0.03
    assert (server.concurrency_limit, server.max_threads, server.queue_size) == (8, 9, 10)


def test_threads_default_to_twice_the_concurrency_limit():
    assert ServerSettings.from_env({"APP_CONCURRENCY_LIMIT": "150"}).max_threads == 300


def test_fewer_threads_than_the_concurrency_limit_is_refused():
    expected = r"APP_MAX_THREADS \(10\) must be at least APP_CONCURRENCY_LIMIT \(20\)"
    with pytest.raises(ChatError, match=expected):
        ServerSettings.from_env({"APP_CONCURRENCY_LIMIT": "20", "APP_MAX_THREADS": "10"})


@pytest.mark.parametrize(
    ("name", "reader"),
    [
        ("CHAT_MAX_STREAMS", Guards.from_env),
        ("APP_CONCURRENCY_LIMIT", ServerSettings.from_env),
        ("APP_MAX_THREADS", ServerSettings.from_env),
        ("APP_QUEUE_SIZE", ServerSettings.from_env),
    ],
)
def test_a_bad_capacity_says_which_setting_is_wrong(name, reader):
    with pytest.raises(ChatError, match=f"{name} must be a whole number above 0, not '0'"):
        reader({name: "0"})


def test_a_bad_update_interval_says_what_is_wrong():
    with pytest.raises(ChatError, match="CHAT_UPDATE_INTERVAL must be a number of seconds"):
        ServerSettings.from_env({"CHAT_UPDATE_INTERVAL": "soon"})


def test_login_attempts_default_to_5_a_minute_and_0_turns_the_limit_off():
    assert ServerSettings.from_env({}).login_attempts_per_minute == 5
    assert ServerSettings.from_env({"APP_LOGIN_ATTEMPTS_PER_MINUTE": "0"}).login_attempts_per_minute == 0
    with pytest.raises(ChatError, match="APP_LOGIN_ATTEMPTS_PER_MINUTE must be a whole number"):
        ServerSettings.from_env({"APP_LOGIN_ATTEMPTS_PER_MINUTE": "-1"})


def test_no_proxy_is_trusted_by_default():
    assert ServerSettings.from_env({}).trusted_proxies == ()


def test_on_a_space_the_private_networks_of_its_proxy_are_trusted_unless_told_otherwise():
    assert ServerSettings.from_env({"SYSTEM": "spaces"}).trusted_proxies == SPACES_PROXIES
    assert ServerSettings.from_env({"SYSTEM": "spaces", "APP_TRUSTED_PROXIES": ""}).trusted_proxies == ()


def test_trusted_proxies_are_addresses_and_networks_separated_by_commas():
    server = ServerSettings.from_env({"APP_TRUSTED_PROXIES": " 10.0.0.5, 192.168.0.0/16 ,::1,"})
    assert server.trusted_proxies == ("10.0.0.5", "192.168.0.0/16", "::1")


@pytest.mark.parametrize("entry", ["proxy.example.com", "10.0.0.300", "10.0.0.1/8", "*"])
def test_a_trusted_proxy_that_is_not_an_address_or_network_is_a_configuration_error(entry):
    with pytest.raises(
        ChatError, match=f"APP_TRUSTED_PROXIES must list IP addresses or networks .*{entry!r}"
    ):
        ServerSettings.from_env({"APP_TRUSTED_PROXIES": f"10.0.0.5,{entry}"})


# --- .env, read by python-dotenv at the entry points ------------------------------------------------


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch):
    """The working directory is an empty tmp dir; os.environ (which load_dotenv writes) is restored."""
    monkeypatch.chdir(tmp_path)
    with mock.patch.dict(os.environ):
        for name in [n for n in os.environ if n.startswith(OURS)]:
            del os.environ[name]
        yield tmp_path


@pytest.fixture
def api():
    with LoopbackMessagesAPI() as server:
        yield server


def ask(question: str) -> tuple[int, str, str]:
    """Run terminal mode in process: its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    return chat.cli.main([question], out=out, err=err), out.getvalue(), err.getvalue()


def test_a_dot_env_file_is_read_with_comments_export_and_quotes(in_tmp_dir, api):
    (in_tmp_dir / ".env").write_text(
        f"# a comment\n\nANTHROPIC_API_KEY={TEST_KEY}\nANTHROPIC_BASE_URL={api.url}\n"
        "CHAT_MODEL=claude-haiku-5-5  # inline note\n"
        'export CHAT_SYSTEM_PROMPT="Be brief. # really"\n'
        "CHAT_MAX_TOKENS='77'\nnot a setting\n"
    )
    code, out, err = ask("hi")
    assert (code, out) == (0, "You said: hi\n") and "Error" not in err
    request = api.requests[0]
    assert (request["model"], request["system"], request["max_tokens"]) == (
        "claude-haiku-5-5",
        "Be brief. # really",
        77,
    )


def test_without_a_dot_env_file_only_the_environment_counts(in_tmp_dir, api):
    os.environ.update(ANTHROPIC_API_KEY=TEST_KEY, ANTHROPIC_BASE_URL=api.url)
    code, out, _ = ask("hi")
    assert (code, out) == (0, "You said: hi\n")
    request = api.requests[0]
    assert (request["model"], request["max_tokens"], "system" in request) == (DEFAULT_MODEL, 4096, False)


def test_the_environment_wins_over_the_dot_env_file(in_tmp_dir, api):
    (in_tmp_dir / ".env").write_text(
        f"ANTHROPIC_API_KEY={TEST_KEY}\nANTHROPIC_BASE_URL={api.url}\n"
        "CHAT_MODEL=claude-haiku-5-5\nCHAT_MAX_TOKENS=77\n"
    )
    os.environ["CHAT_MAX_TOKENS"] = "55"
    assert ask("hi")[0] == 0
    request = api.requests[0]
    assert (request["model"], request["max_tokens"]) == ("claude-haiku-5-5", 55)


def test_a_bad_setting_in_the_dot_env_file_is_a_configuration_error(in_tmp_dir):
    (in_tmp_dir / ".env").write_text("CHAT_MAX_TOKENS=lots\n")
    code, out, err = ask("hi")
    assert (code, out) == (2, "")
    assert err == "Configuration error: CHAT_MAX_TOKENS must be a whole number above 0, not 'lots'.\n"


def test_the_web_app_reads_the_service_and_server_settings_from_the_dot_env_file(in_tmp_dir, monkeypatch):
    (in_tmp_dir / ".env").write_text(
        'CHAT_MODEL=claude-haiku-5-5\nAPP_USERNAME=ada\nAPP_PASSWORD="s3cret pass"\nAPP_QUEUE_SIZE=12\n'
    )
    built = []
    monkeypatch.setattr(app, "build_demo", lambda settings, server: built.append((settings, server)))
    monkeypatch.setattr(app, "serve", lambda demo, server, **where: None)
    app.main([])
    ((settings, server),) = built
    assert settings.defaults.model == "claude-haiku-5-5"
    assert (server.auth, server.queue_size) == (("ada", "s3cret pass"), 12)


# --- no import cycle between config and errors ------------------------------------------------------


@pytest.mark.parametrize(
    "modules", [("chat.config", "chat.errors"), ("chat.errors", "chat.config")], ids=["config", "errors"]
)
def test_config_and_errors_import_in_either_order_in_a_fresh_interpreter(modules):
    code = "; ".join(f"import {name}" for name in modules) + "; print('imported')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "imported\n", "")


def test_errors_imports_nothing_from_config():
    imported: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / "chat" / "errors.py").read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = ".".join(filter(None, ["chat" if node.level else "", node.module or ""]))
            imported |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
    assert imported, "chat/errors.py imports nothing at all: is this the right file?"
    assert not [name for name in imported if name == "chat.config" or name.startswith("chat.config.")]
