"""Security through the real app: no key leaks, no files served, a password, isolated sessions, bad input."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import app
from chat import Settings
from tests.conftest import answer_text, assert_valid_history, chat, launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY, Failure, echo_script, replies
from ui.render import notice_text
from ui.server import ServerSettings

ROOT = Path(__file__).parent.parent
FAKE_KEY = "sk-ant-api03-FAKE-recognisable-Zq8Xw3"


@pytest.fixture
def api() -> Iterator[LoopbackMessagesAPI]:
    with LoopbackMessagesAPI(echo_script(delay=0.005)) as server:
        yield server


@pytest.fixture
def keyed(api: LoopbackMessagesAPI, tmp_path: Path) -> Settings:
    """The app's settings: the recognisable fake key, on the loopback API."""
    return make_settings(api_key=FAKE_KEY, base_url=api.url, data_dir=tmp_path / "data")


@pytest.fixture
def url(keyed: Settings) -> Iterator[str]:
    with launched_app(keyed) as served:
        yield served


def notice(update: object) -> str:
    """The failure notice a reply ended with (the app's titled box)."""
    assert isinstance(update, list), f"expected a notice, got {update!r}"
    assert update[-1]["metadata"]["title"] == app.NOTICE_TITLE
    return notice_text(update[-1]["content"])


# The API key


def test_the_key_is_not_in_the_page_its_config_or_the_api_schema(url, api):
    chat(Client(url, verbose=False), "hello")
    assert api.exchanges[0].headers["authorization"] == f"Bearer {FAKE_KEY}"  # the key is in use, server-side
    for path in ["", "config", "gradio_api/info", "gradio_api/info?all_endpoints=true"]:
        response = httpx.get(url + path)
        assert response.status_code == 200, path
        assert FAKE_KEY not in response.text and "Zq8Xw3" not in response.text, path


def test_the_key_is_not_in_replies_or_logs_even_at_debug_level(api, keyed, caplog, capfd):
    for name in ("", "anthropic", "httpx2", "httpx", "httpcore", "gradio", "chat", "app"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    api.script = replies(Failure(401, "authentication_error", "invalid x-api-key"))
    with launched_app(keyed) as served:
        client = Client(served, verbose=False)
        updates = chat(client, "first") + chat(client, "second")
    assert "Request options" in caplog.text  # the SDK's debug log was captured
    assert "rejected" in notice(updates[0])
    everything = caplog.text + json.dumps(updates) + "".join(capfd.readouterr())
    assert FAKE_KEY not in everything and "Zq8Xw3" not in everything


# Files


FILE_ROUTES = ["gradio_api/file=", "file=", "gradio_api/file/", "gradio_api/static/"]
FILES = [
    "app.py",
    ".env",
    str(ROOT / "app.py"),
    str(ROOT / "chat" / "config.py"),
    "/etc/passwd",
    "../../etc/passwd",
]


def test_no_file_of_the_app_folder_or_the_system_is_served(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(f"ANTHROPIC_API_KEY={FAKE_KEY}\n")
    (tmp_path / "app.py").write_text((ROOT / "app.py").read_text())
    monkeypatch.chdir(tmp_path)  # the app's folder holds a .env with the key
    served_files = []
    settings = make_settings(api_key=TEST_KEY, base_url="http://127.0.0.1:9", data_dir=tmp_path / "data")
    with launched_app(settings) as served:
        for route in FILE_ROUTES:
            for path in FILES:
                response = httpx.get(served + route + path)
                leaked = any(secret in response.text for secret in (FAKE_KEY, "root:", "def respond"))
                if response.status_code not in (400, 403, 404) or leaked:
                    served_files.append((route + path, response.status_code))
    assert served_files == []


# Password


@pytest.fixture
def protected_url(keyed: Settings) -> Iterator[str]:
    with launched_app(keyed, ServerSettings(username="ada", password="correct horse")) as served:
        yield served


def test_with_a_password_the_chat_endpoint_refuses_callers_without_it(protected_url, api):
    for path in ["gradio_api/call/chat", "gradio_api/queue/join"]:
        response = httpx.post(protected_url + path, json={"data": ["hi"], "fn_index": 0, "session_hash": "x"})
        assert response.status_code == 401, path
    assert httpx.get(protected_url + "config").status_code == 401
    with pytest.raises(Exception, match="credentials"):
        Client(protected_url, verbose=False)
    assert api.requests == []


def test_with_a_password_the_chat_works_for_who_has_it(protected_url, api):
    client = Client(protected_url, auth=("ada", "correct horse"), verbose=False)
    assert answer_text(chat(client, "hi")[-1]) == "You said: hi"


def test_after_login_the_page_config_holds_neither_the_password_nor_the_key(protected_url):
    with httpx.Client(base_url=protected_url) as browser:
        assert browser.post("login", data={"username": "ada", "password": "correct horse"}).status_code == 200
        config = browser.get("config")
    assert config.status_code == 200
    assert "correct horse" not in config.text and FAKE_KEY not in config.text


def test_a_wrong_password_is_refused(protected_url):
    with pytest.raises(Exception, match=r"(?i)incorrect|credentials|login"):
        Client(protected_url, auth=("ada", "wrong"), verbose=False)


# Sessions


def test_concurrent_sessions_never_see_each_others_history(url, api):
    words = ["heron", "walnut", "cobalt", "juniper", "quartz", "saffron", "tundra", "violet"]

    def converse(word: str) -> list[str]:
        client = Client(url, verbose=False)
        return [
            answer_text(chat(client, f"my secret word is {word}")[-1]),
            answer_text(chat(client, "what is my secret word?")[-1]),
        ]

    with ThreadPoolExecutor(len(words)) as pool:
        answers = dict(zip(words, pool.map(converse, words), strict=True))
    assert len(api.requests) == 2 * len(words)
    for body in api.requests:
        mentioned = {word for word in words if word in json.dumps(body["messages"])}
        assert len(mentioned) == 1, body["messages"]
        assert_valid_history(body["messages"])
    for word, (first, second) in answers.items():
        assert (
            first == f"You said: my secret word is {word}" and second == "You said: what is my secret word?"
        )
    follow_ups = [body for body in api.requests if len(body["messages"]) == 3]
    assert sorted(
        re.search(r"is (\w+)$", b["messages"][0]["content"]).group(1) for b in follow_ups
    ) == sorted(words)


# Bad input


def test_unicode_of_every_kind_round_trips_intact(url, api):
    text = (
        "emoji 👩‍👩‍👧‍👦🚀🇺🇦 rtl שלום مرحبا zero-width a\u200bb\u200cc\u200dd\ufeffe "
        "bidi \u202eesrever\u202c control \x07\x1b[31m\x7f combining e\u0301 cjk 漢字 "
        "astral \U0001d518\U0001d52b\U0001d526"
    )
    client = Client(url, verbose=False)
    assert answer_text(chat(client, text)[-1]) == f"You said: {text}"
    chat(client, "again")
    assert api.requests[0]["messages"][0]["content"] == text
    assert api.requests[1]["messages"][:2] == [
        {"role": "user", "content": text},
        {"role": "assistant", "content": [{"type": "text", "text": f"You said: {text}"}]},
    ]


def test_a_message_over_the_size_limit_is_refused_with_the_limit_and_not_sent(api, keyed):
    with launched_app(keyed) as served:
        client = Client(served, verbose=False)
        shown = notice(chat(client, "x" * 50_001)[-1])
        assert "50,001 characters" in shown and "the limit is 50,000" in shown and "nothing was sent" in shown
        assert api.requests == []
        assert answer_text(chat(client, "short")[-1]) == "You said: short"
        assert api.requests[0]["messages"] == [{"role": "user", "content": "short"}]


def raw_chat(client: Client, message: object) -> Any:
    """Send any JSON value as the message box's payload, as a script could; return the final update."""
    job = client.submit(message, api_name="/chat")
    list(job)
    return job.result()


def test_a_missing_message_gets_the_blank_message_notice(url, api):
    shown = notice(raw_chat(Client(url, verbose=False), None))
    assert "blank messages are not sent" in shown and api.requests == []


@pytest.mark.parametrize(
    "message", [123, True, ["a", "b"], {"text": 7, "files": []}, {"text": "hi", "files": "nope"}]
)
def test_a_message_that_is_not_text_and_files_is_refused(url, api, message):
    with pytest.raises(AppError, match="The message must be text"):
        raw_chat(Client(url, verbose=False), message)
    assert api.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {"data": []},
        {"data": "not a list"},
        {"data": [{"role": "user"}, [1, 2], None, 7]},
        {"nothing": True},
        "not json at all",
    ],
)
def test_malformed_calls_to_the_chat_api_get_an_error_and_leave_conversations_intact(url, api, body):
    client = Client(url, verbose=False)
    chat(client, "before")
    raw = httpx.post(
        url + "gradio_api/call/chat", **({"content": body} if isinstance(body, str) else {"json": body})
    )
    if raw.status_code == 200:  # accepted into the queue: the event itself reports the error
        events = httpx.get(url + f"gradio_api/call/chat/{raw.json()['event_id']}", timeout=10).text
        assert "event: error" in events or "must be text" in events
    else:
        assert raw.status_code == 422
    chat(client, "after")
    assert api.requests[-1]["messages"] == [
        {"role": "user", "content": "before"},
        {"role": "assistant", "content": [{"type": "text", "text": "You said: before"}]},
        {"role": "user", "content": "after"},
    ]


def test_an_unknown_endpoint_index_is_refused_and_the_app_keeps_serving(url, api):
    response = httpx.post(
        url + "gradio_api/queue/join", json={"data": ["hi"], "fn_index": 9999, "session_hash": "x"}
    )
    assert response.status_code >= 400
    assert answer_text(chat(Client(url, verbose=False), "still here?")[-1]) == "You said: still here?"
