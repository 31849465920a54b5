"""The real app, launched and driven through gradio_client, against the loopback Messages API."""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import app
from chat import Settings
from tests.conftest import (
    answer_text,
    chat,
    free_port,
    launched_app,
    notice_in,
    wait_until_serving,
    write_image,
    write_pdf,
)
from tests.loopback_api import Failure, LoopbackMessagesAPI

ROOT = Path(__file__).parent.parent


@pytest.fixture
def app_url(loopback_api: LoopbackMessagesAPI) -> Iterator[str]:
    with launched_app(Settings(api_key="sk-test-not-real", base_url=loopback_api.url)) as url:
        yield url


def test_reply_streams_in_several_growing_updates(app_url, loopback_api):
    words = " ".join(f"word{number}" for number in range(60))  # 30 deltas, 10 ms apart
    answers = [answer_text(update) for update in chat(Client(app_url, verbose=False), words)]
    assert len(answers) >= 3
    assert answers[-1] == f"You said: {words}"
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(answers))


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
    notice = chat(Client(app_url, verbose=False), "hi")[-1][-1]  # the reply ends with a notice box
    assert notice["metadata"]["title"] == app.NOTICE_TITLE
    assert notice["content"].startswith("Claude could not answer (error 400)")


def test_python_app_py_serves_the_offline_model_with_no_key():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(GRADIO_SERVER_PORT=str(port), CHAT_OFFLINE_DELAY="0.005", GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(url, process)
        assert "Offline demo model" in httpx.get(url).text
        updates = chat(Client(url, verbose=False), "hello offline")
        assert len(updates) >= 3
        answer = answer_text(updates[-1])
        assert "offline demo model" in answer and "\u201chello offline\u201d" in answer
    finally:
        process.terminate()
        process.wait(10)


def test_an_uploaded_image_reaches_the_api_as_an_image_block(app_url, loopback_api, tmp_path):
    image = write_image(tmp_path / "red.png")
    chat(Client(app_url, verbose=False), "what colour is this?", [image])
    content = loopback_api.requests[0]["messages"][0]["content"]
    assert [block["type"] for block in content] == ["image", "text"]
    assert content[0]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(image.read_bytes()).decode(),
    }
    assert content[1] == {"type": "text", "text": "what colour is this?"}


def test_an_uploaded_pdf_reaches_the_api_as_a_document_block(app_url, loopback_api, tmp_path):
    pdf = write_pdf(tmp_path / "spec.pdf", pages=3)
    chat(Client(app_url, verbose=False), "summarise", [pdf])
    document = loopback_api.requests[0]["messages"][0]["content"][0]
    assert document["type"] == "document" and document["title"] == "spec.pdf"
    assert base64.b64decode(document["source"]["data"]) == pdf.read_bytes()


def test_a_file_that_is_not_an_image_or_pdf_shows_a_clear_message_and_sends_nothing(
    app_url, loopback_api, tmp_path
):
    fake = tmp_path / "notes.png"
    fake.write_text("not an image at all")
    notice = notice_in(chat(Client(app_url, verbose=False), "look", [fake])[-1])
    assert notice.startswith("notes.png is not a file Claude can read. Attach PNG, JPEG, GIF")
    assert loopback_api.requests == []


def test_a_turn_with_files_is_sent_again_unchanged_on_the_next_turn(app_url, loopback_api, tmp_path):
    client = Client(app_url, verbose=False)
    chat(client, "what is this?", [write_image(tmp_path / "red.png"), write_pdf(tmp_path / "spec.pdf")])
    chat(client, "and now?")
    first, second = loopback_api.requests
    assert second["messages"][0] == first["messages"][0]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]


def exported_files(client: Client) -> dict[str, Path]:
    """Press Export and return the downloaded files by suffix."""
    update = client.predict(api_name="/export")
    return {Path(path).suffix: Path(path) for path in update["value"]}


def test_export_downloads_the_exact_payload_of_the_last_request_and_a_transcript(
    app_url, loopback_api, tmp_path
):
    client = Client(app_url, verbose=False)
    chat(client, "hello")
    chat(client, "what is this?", [write_image(tmp_path / "red.png")])
    files = exported_files(client)
    payload = json.loads(files[".json"].read_text())
    last = loopback_api.requests[-1]
    assert {**payload, "messages": payload["messages"][:-1]} == last
    assert payload["messages"][-1]["content"] == [{"type": "text", "text": "You said: what is this?"}]
    assert "*Attached: red.png*\n\nwhat is this?" in files[".md"].read_text()


def test_a_loaded_export_continues_the_conversation_in_a_new_tab(app_url, loopback_api, tmp_path):
    first = Client(app_url, verbose=False)
    chat(first, "look at this", [write_image(tmp_path / "red.png")])
    payload = json.loads(exported_files(first)[".json"].read_text())
    second = Client(app_url, verbose=False)
    shown = second.predict(handle_file(str(exported_files(first)[".json"])), api_name="/load")
    assert [m["role"] for m in shown] == ["user", "assistant"]
    chat(second, "and now?")
    assert loopback_api.requests[-1]["messages"] == [
        *payload["messages"],
        {"role": "user", "content": "and now?"},
    ]


def test_loading_a_file_that_is_not_an_export_shows_a_clear_message(app_url, tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"notes": []}')
    with pytest.raises(AppError, match=r"notes.json is not a conversation export: it has no list"):
        Client(app_url, verbose=False).predict(handle_file(str(bad)), api_name="/load")
