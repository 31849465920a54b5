"""The real app, launched and driven through gradio_client, against the loopback Messages API."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from chat import Settings
from tests.conftest import free_port, launched_app
from tests.loopback_api import Failure, LoopbackMessagesAPI

ROOT = Path(__file__).parent.parent


@pytest.fixture
def app_url(loopback_api: LoopbackMessagesAPI) -> Iterator[str]:
    with launched_app(Settings(api_key="sk-test-not-real", base_url=loopback_api.url)) as url:
        yield url


def chat(client: Client, message: str) -> list[str]:
    """Send a message the way the page does and return every update; raise what the page shows."""
    job = client.submit(message, api_name="/chat")
    updates = list(job)
    job.result()  # raises AppError with the message the page would show
    return updates


def test_reply_streams_in_several_growing_updates(app_url, loopback_api):
    words = " ".join(f"word{number}" for number in range(60))  # 30 deltas, 10 ms apart
    updates = chat(Client(app_url, verbose=False), words)
    assert len(updates) >= 3
    assert updates[-1] == f"You said: {words}"
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(updates))


def test_second_turn_sends_the_first_turn_to_the_api(app_url, loopback_api):
    client = Client(app_url, verbose=False)
    chat(client, "my name is Ada")
    chat(client, "what is my name?")
    assert loopback_api.requests[1]["messages"] == [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": [{"type": "text", "text": "You said: my name is Ada"}]},
        {"role": "user", "content": "what is my name?"},
    ]


def test_two_tabs_keep_separate_histories(app_url, loopback_api):
    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    chat(first, "secret word: heron")
    chat(second, "hello from tab two")
    assert loopback_api.requests[1]["messages"] == [{"role": "user", "content": "hello from tab two"}]


def test_the_request_uses_the_configured_model_and_key(app_url, loopback_api):
    chat(Client(app_url, verbose=False), "hi")
    assert loopback_api.requests[0]["model"] == "claude-sonnet-5-5"
    assert loopback_api.exchanges[0].headers["authorization"] == "Bearer sk-test-not-real"


def test_an_api_failure_shows_a_clear_message(app_url, loopback_api):
    loopback_api.script = lambda body: Failure(400, "invalid_request_error", "bad request")
    with pytest.raises(AppError, match=r"Claude could not answer \(error 400\)"):
        chat(Client(app_url, verbose=False), "hi")


def test_python_app_py_serves_the_offline_model_with_no_key():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(GRADIO_SERVER_PORT=str(port), CHAT_OFFLINE_DELAY="0.005", GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_until_serving(url, process)
        assert "Offline demo model" in httpx.get(url).text
        updates = chat(Client(url, verbose=False), "hello offline")
        assert len(updates) >= 3
        assert "offline demo model" in updates[-1] and "\u201chello offline\u201d" in updates[-1]
    finally:
        process.terminate()
        process.wait(10)


def _wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"app did not start serving {url} within {timeout}s")
