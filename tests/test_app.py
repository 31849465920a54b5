"""The real app, launched and driven through gradio_client, against the loopback Messages API."""

from __future__ import annotations

import base64
import itertools
import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import app
from chat import ChatError, ErrorKind
from chat.history import NO_TOOLS
from tests.app_process import app_py
from tests.conftest import (
    answer_text,
    assert_valid_history,
    boxes,
    chat,
    launched_app,
    make_settings,
    notice_in,
    write_image,
    write_pdf,
)
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY, Failure, fixture, replies, thinking_script
from ui.render import SOURCES_TITLE, USAGE_TITLE, notice_text
from ui.wording import say

PIRATE = {
    "model": "claude-opus-5-5",
    "max_tokens": 1000,
    "system_prompt": "Be a pirate.",
    "thinking": True,
}
# The Settings panel, in order
PANEL = ("model", "system_prompt", "max_tokens", "thinking", "effort", "web_search", "web_fetch")
WEATHER_URL = "https://world-weather.info/forecast/usa/new_york/may-2025/"
ACCUWEATHER_URL = "https://www.accuweather.com/en/us/new-york/10021/weather-forecast/349727"


@pytest.fixture
def app_url(loopback_api: LoopbackMessagesAPI, tmp_path: Path) -> Iterator[str]:
    settings = make_settings(api_key=TEST_KEY, base_url=loopback_api.url, data_dir=tmp_path / "data")
    with launched_app(settings) as url:
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
    assert loopback_api.exchanges[0].headers["authorization"] == f"Bearer {TEST_KEY}"


def test_an_api_failure_shows_a_clear_message(app_url, loopback_api):
    loopback_api.script = lambda body: Failure(400, "invalid_request_error", "bad request")
    notice = chat(Client(app_url, verbose=False), "hi")[-1][-1]  # the reply ends with a notice box
    assert notice["metadata"]["title"] == app.NOTICE_TITLE
    assert notice_text(notice["content"]) == say(
        ChatError(ErrorKind.INVALID_REQUEST, "Claude could not answer (error 400): bad request.")
    )
    assert notice_text(notice["content"]).startswith("Claude could not answer (error 400)")


def test_python_app_py_serves_the_offline_model_with_no_key():
    with app_py() as running:
        assert "Offline demo model" in httpx.get(running.url).text
        updates = chat(Client(running.url, verbose=False), "hello offline")
    assert len(updates) >= 3
    answer = answer_text(updates[-1])
    assert "offline demo model" in answer and "\u201chello offline\u201d" in answer


def test_sigterm_stops_app_py_saving_the_answer_it_was_streaming(tmp_path):
    with app_py(CHAT_OFFLINE_DELAY="0.2", CHAT_DATA_DIR=str(tmp_path)) as running:
        job = Client(running.url, verbose=False).submit({"text": "a long one", "files": []}, api_name="/chat")
        deadline = time.monotonic() + 30
        while not (job.outputs() and answer_text(job.outputs()[-1])) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.outputs(), "no part of the answer came"
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(30) == 0
    with sqlite3.connect(tmp_path / "chats.db") as db:
        ((status, record),) = db.execute("SELECT status, record FROM exchanges").fetchall()
    assert status == "stopped" and json.loads(record)["error"] is None  # saved as a Stop, not lost
    assert "offline demo model" in json.loads(record)["response"]["content"][0]["text"]


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


def exported_files(client: Client, **panel: object) -> dict[str, Path]:
    """Press Export (with these Settings panel values) and return the downloaded files by suffix."""
    update = client.predict(api_name="/export", **panel)
    return {Path(path).suffix: Path(path) for path in update["value"]}


def loaded(client: Client, path: Path) -> list[Any]:
    """Press Load with this export; return the chat it shows, then the panel's values it set."""
    shown, *rest = client.predict(handle_file(str(path)), api_name="/load")
    return [shown, *rest[: len(PANEL)]]


def exported(client: Client, **panel: object) -> dict[str, Any]:
    """The JSON export, as Export downloads it."""
    return json.loads(exported_files(client, **panel)[".json"].read_text())


def options_of(request: dict[str, Any]) -> dict[str, Any]:
    """A request body's options: everything but its messages and the stream flag."""
    return {key: value for key, value in request.items() if key not in ("messages", "stream")}


def test_export_holds_the_exact_next_request_every_exchange_and_a_transcript(app_url, loopback_api, tmp_path):
    client = Client(app_url, verbose=False)
    chat(client, "hello")
    chat(client, "what is this?", [write_image(tmp_path / "red.png")])
    files = exported_files(client)
    export = json.loads(files[".json"].read_text())
    last = loopback_api.requests[-1]
    answer = {"role": "assistant", "content": [{"type": "text", "text": "You said: what is this?"}]}
    assert (export["format"], export["version"]) == ("claude-chat-export", 1)
    assert export["request"] == {**last, "messages": [*last["messages"], answer]}
    assert export["request"]["stream"] is True
    assert [e["request"] for e in export["exchanges"]] == [options_of(r) for r in loopback_api.requests]
    assert [e["prompt"]["text"] for e in export["exchanges"]] == ["hello", "what is this?"]
    (image,) = export["exchanges"][1]["prompt"]["files"]
    attachment = export["attachments"][image["sha256"]]
    assert attachment["name"] == "red.png" and attachment["media_type"] == "image/png"
    assert attachment["data"] == base64.b64encode((tmp_path / "red.png").read_bytes()).decode()
    assert "*Attached: red.png*\n\nwhat is this?" in files[".md"].read_text()


def test_the_exported_request_is_what_the_next_turn_sends_before_its_message(app_url, loopback_api):
    client = Client(app_url, verbose=False)
    chat(client, "hello")
    request = exported(client)["request"]
    chat(client, "and now?")
    assert loopback_api.requests[-1] == {
        **request,
        "messages": [*request["messages"], {"role": "user", "content": "and now?"}],
    }


def test_a_loaded_export_continues_the_conversation_in_a_new_tab(app_url, loopback_api, tmp_path):
    first = Client(app_url, verbose=False)
    chat(first, "look at this", [write_image(tmp_path / "red.png")])
    path = exported_files(first)[".json"]
    request = json.loads(path.read_text())["request"]
    second = Client(app_url, verbose=False)
    shown, *panel = loaded(second, path)
    user, answer, usage = shown  # the message with its file, the answer, its usage box
    assert (user["role"], answer["role"], usage["role"]) == ("user", "assistant", "assistant")
    assert [Path(part["file"]).name for part in user["content"] if "file" in part] == ["red.png"]
    assert answer["content"] == [{"text": "You said: look at this", "type": "text"}]
    assert usage["metadata"]["title"] == USAGE_TITLE
    assert panel == ["claude-sonnet-5-5", "", 4096, False, "default", False, False]
    chat(second, "and now?")
    assert loopback_api.requests[-1] == {
        **request,
        "messages": [*request["messages"], {"role": "user", "content": "and now?"}],
    }


def test_a_turn_with_panel_values_exports_them_with_its_signed_thinking(app_url, loopback_api):
    loopback_api.script = thinking_script()
    client = Client(app_url, verbose=False)
    chat(client, "ahoy", **PIRATE)
    (exchange,) = exported(client, **PIRATE)["exchanges"]
    assert {key: exchange["request"][key] for key in ("model", "max_tokens", "system", "thinking")} == {
        "model": "claude-opus-5-5",
        "max_tokens": 1000,
        "system": "Be a pirate.",
        "thinking": {"type": "adaptive", "display": "summarized"},
    }
    assert exchange["response"]["content"][0] == {
        "type": "thinking",
        "thinking": "I should answer turn 1.",
        "signature": "sig-1",
    }


def test_a_loaded_export_turns_web_search_back_on_in_the_panel(app_url, loopback_api):
    first = Client(app_url, verbose=False)
    chat(first, "look it up", web_search=True)
    assert [tool["name"] for tool in loopback_api.requests[-1]["tools"]] == ["web_search"]
    path = exported_files(first, web_search=True)[".json"]
    _, *panel = loaded(Client(app_url, verbose=False), path)
    assert dict(zip(PANEL, panel, strict=True))["web_search"] is True
    assert dict(zip(PANEL, panel, strict=True))["web_fetch"] is False


def test_a_loaded_export_continues_with_its_panel_values_in_a_new_session(app_url, loopback_api):
    loopback_api.script = thinking_script()
    first = Client(app_url, verbose=False)
    chat(first, "ahoy", **PIRATE)
    path = exported_files(first, **PIRATE)[".json"]
    second = Client(app_url, verbose=False)
    _, *panel = loaded(second, path)
    assert panel == ["claude-opus-5-5", "Be a pirate.", 1000, True, "default", False, False]
    chat(second, "where be the treasure?", **dict(zip(PANEL, panel, strict=True)))  # as the page would
    sent = loopback_api.requests[-1]
    assert (sent["model"], sent["system"], sent["max_tokens"]) == ("claude-opus-5-5", "Be a pirate.", 1000)
    assert sent["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert sent["messages"] == [
        {"role": "user", "content": "ahoy"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should answer turn 1.", "signature": "sig-1"},
                {"type": "text", "text": "Answer 1: ahoy"},
            ],
        },
        {"role": "user", "content": "where be the treasure?"},
    ]


def test_loading_a_file_that_is_not_an_export_shows_a_clear_message(app_url, tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"notes": []}')
    with pytest.raises(AppError, match=r"notes.json is not a conversation export: it has no list"):
        Client(app_url, verbose=False).predict(handle_file(str(bad)), api_name="/load")


def test_a_tool_call_shows_its_lead_in_and_a_tool_call_box(app_url, loopback_api):
    loopback_api.script = replies(fixture("tool_use.sse"))
    final = chat(Client(app_url, verbose=False), "weather in SF?")[-1]
    assert answer_text(final) == "Okay, let's check the weather for San Francisco, CA:"
    assert final[0]["content"] == answer_text(final)  # the lead-in first, then the box
    assert list(boxes(final)) == ["Tool call: get_weather", "Claude asked for a tool", USAGE_TITLE]
    tool = boxes(final)["Tool call: get_weather"]
    assert '"location": "San Francisco, CA"' in tool["content"] and '"unit": "fahrenheit"' in tool["content"]


def test_the_turn_after_a_tool_call_answers_it_first_and_carries_its_tool(app_url, loopback_api):
    loopback_api.script = replies(fixture("tool_use.sse"))
    client = Client(app_url, verbose=False)
    chat(client, "weather in SF?")
    chat(client, "never mind")
    sent = loopback_api.requests[-1]
    assert [block["type"] for block in sent["messages"][1]["content"]] == ["text", "tool_use"]
    assert sent["messages"][2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "content": NO_TOOLS,
                "is_error": True,
            },
            {"type": "text", "text": "never mind"},
        ],
    }
    assert [tool["name"] for tool in sent["tools"]] == ["get_weather"]
    assert sent["tool_choice"] == {"type": "none"}
    assert_valid_history(sent["messages"])


def test_a_web_search_shows_the_search_its_sources_and_numbered_citation_links(app_url, loopback_api):
    loopback_api.script = replies(fixture("web_search.sse"))
    final = chat(Client(app_url, verbose=False), "weather in NYC?")[-1]
    shown = boxes(final)
    assert list(shown) == [
        "Searched the web: weather NYC today",
        "Found 3 sources",
        SOURCES_TITLE,
        USAGE_TITLE,
    ]
    found = shown["Found 3 sources"]["content"]
    assert f"- [New York, NY Weather Forecast | AccuWeather]({ACCUWEATHER_URL}) (May 20, 2025)" in found
    answer = answer_text(final)
    assert answer.startswith("I'll check the current weather in New York City for you.")
    assert f"a low around 55°F [[1]]({WEATHER_URL}), and there is" in answer
    assert f"this afternoon [[2]]({ACCUWEATHER_URL}). If you're heading out" in answer
    sources = shown[SOURCES_TITLE]
    assert sources["metadata"]["log"] == "2 cited"
    assert sources["content"].startswith("1. [Weather in New York City in May 2025 (New York) - detailed")
    assert f"({WEATHER_URL})\n   > Tuesday, 20 May." in sources["content"]
    assert f"2. [New York, NY Weather Forecast | AccuWeather]({ACCUWEATHER_URL})" in sources["content"]


def test_the_chat_api_takes_the_message_then_the_panel_then_the_pages_own_storage(app_url):
    info = Client(app_url, verbose=False).view_api(return_format="dict")["named_endpoints"]["/chat"]
    names = [parameter["parameter_name"] for parameter in info["parameters"]]
    assert names == ["message", *PANEL, "token", "open_id"]
    assert all(parameter["parameter_has_default"] for parameter in info["parameters"][1:])
