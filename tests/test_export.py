"""Exporting a conversation (the exact JSON export and a Markdown transcript) and loading it back."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from chat import ChatError, ErrorKind, Status, TurnOptions
from chat.export import export_data, export_json, export_markdown, load_export, loaded_options
from chat.files import FileStore
from chat.offline import offline_script
from chat.wire import ScriptedMessage, Stream, TextBlock
from tests.conftest import Chat, make_settings, write_image, write_pdf
from tests.upstream import TEST_KEY, Failure, error_mid_stream, fixture, text_reply, thinking_script
from ui.gradio_fixes import exchanges_on_screen
from ui.page import ChatPage
from ui.server import ServerSettings

WEATHER_PAGE = (
    "[Weather in New York City in May 2025 (New York) - detailed Weather Forecast for a month]"
    "(https://world-weather.info/forecast/usa/new_york/may-2025/)"
)
ACCUWEATHER = (
    "[New York, NY Weather Forecast | AccuWeather]"
    "(https://www.accuweather.com/en/us/new-york/10021/weather-forecast/349727)"
)
PNG_PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
PIRATE = TurnOptions(model="claude-opus-5-5", max_tokens=200, system_prompt="Be a pirate.", thinking=True)
PIRATE_REQUEST = {
    "model": "claude-opus-5-5",
    "max_tokens": 200,
    "cache_control": {"type": "ephemeral"},
    "system": "Be a pirate.",
    "thinking": {"type": "adaptive", "display": "summarized"},
}


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in keys}


@pytest.fixture
def chat_with_files(tmp_path) -> tuple[Chat, list[str]]:
    settings = make_settings(api_key=TEST_KEY, max_tokens=321, system_prompt="Be brief.")
    chat = Chat(text_reply("Thought.", thinking="Hmm."), text_reply("A red square."), settings=settings)
    return chat, [str(write_image(tmp_path / "red.png")), str(write_pdf(tmp_path / "a.pdf"))]


@pytest.fixture
def pirate_chat() -> Chat:
    """One turn answered with thinking under non-default options (the panel's current ones)."""
    return Chat(then=thinking_script(model="claude-opus-5-5"))


async def test_the_export_request_is_the_history_with_its_files_and_stream_on(chat_with_files):
    chat, files = chat_with_files
    await chat.send("hello")
    await chat.send("what are these?", files)
    request = export_data(chat.service, chat.conversation, chat.settings.defaults)["request"]
    assert request["messages"][:-1] == chat.requests[-1]["messages"]
    assert request["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "A red square."}],
    }
    assert without(request, "messages") == {**without(chat.requests[-1], "messages"), "stream": True}
    assert request["system"] == "Be brief." and request["max_tokens"] == 321


async def test_the_export_carries_each_attached_file_once_by_hash(chat_with_files):
    chat, files = chat_with_files
    await chat.send("what are these?", files)
    await chat.send("and again?", files)
    exported = export_data(chat.service, chat.conversation, chat.settings.defaults)
    refs = [ref for exchange in exported["exchanges"] for ref in exchange["prompt"]["files"]]
    assert len(refs) == 4 and set(exported["attachments"]) == {ref["sha256"] for ref in refs}
    image = exported["attachments"][refs[0]["sha256"]]
    assert (image["name"], image["media_type"]) == ("red.png", "image/png")
    assert base64.b64decode(image["data"]) == Path(files[0]).read_bytes()


async def test_a_turn_sent_with_other_options_exports_them_in_its_exchange_request(pirate_chat):
    await pirate_chat.send("Ahoy?", options=PIRATE)
    [exchange] = export_data(pirate_chat.service, pirate_chat.conversation, PIRATE)["exchanges"]
    assert exchange["request"] == PIRATE_REQUEST
    assert without(pirate_chat.requests[0], "messages", "stream") == PIRATE_REQUEST


async def test_the_export_request_is_the_exact_body_the_next_turn_sends(pirate_chat):
    await pirate_chat.send("Ahoy?", options=PIRATE)
    request = export_data(pirate_chat.service, pirate_chat.conversation, PIRATE)["request"]
    assert request == {**pirate_chat.service.request(pirate_chat.conversation, PIRATE), "stream": True}
    await pirate_chat.send("Where be the gold?", options=PIRATE)
    sent = pirate_chat.requests[-1]
    assert sent == {
        **request,
        "messages": [*request["messages"], {"role": "user", "content": "Where be the gold?"}],
    }


async def test_the_export_request_follows_the_current_options_not_the_last_turns(pirate_chat):
    await pirate_chat.send("Ahoy?", options=PIRATE)
    exported = export_data(pirate_chat.service, pirate_chat.conversation, pirate_chat.settings.defaults)
    request = exported["request"]
    assert request["model"] == "claude-sonnet-5-5" and "system" not in request
    answer = request["messages"][1]["content"]
    assert [block["type"] for block in answer] == ["text"]  # thinking is only valid under its own prompt
    assert exported["exchanges"][0]["request"] == PIRATE_REQUEST


async def test_thinking_blocks_and_signatures_are_exported_as_returned(chat_with_files):
    chat, _ = chat_with_files
    await chat.send("hello")
    exported = export_data(chat.service, chat.conversation, chat.settings.defaults)
    thinking = {"type": "thinking", "thinking": "Hmm.", "signature": "sig"}
    assert exported["exchanges"][0]["response"]["content"] == [thinking, {"type": "text", "text": "Thought."}]
    assert exported["request"]["messages"][1]["content"][0] == thinking


async def test_a_loaded_export_continues_with_exactly_the_exported_history(pirate_chat):
    await pirate_chat.send("Ahoy?", options=PIRATE)
    await pirate_chat.send("Where be the gold?", options=PIRATE)
    exported = json.loads(export_json(pirate_chat.service, pirate_chat.conversation, PIRATE))
    later = Chat()
    later.conversation.replace(load_export(json.dumps(exported), later.service.files, "export.json"))
    options = loaded_options(later.conversation.exchanges, later.settings.defaults, later.service.models)
    await later.send("And the map?", options=options)
    assert later.requests[0] == {
        **exported["request"],
        "messages": [*exported["request"]["messages"], {"role": "user", "content": "And the map?"}],
    }


async def test_loaded_options_restore_the_model_system_prompt_max_tokens_and_thinking(pirate_chat, tmp_path):
    await pirate_chat.send("Ahoy?", options=PIRATE)
    exchanges = load_export(
        export_json(pirate_chat.service, pirate_chat.conversation, PIRATE), FileStore(tmp_path)
    )
    defaults = make_settings(model="claude-haiku-5-5", max_tokens=64).defaults
    assert loaded_options(exchanges, defaults, ["claude-opus-5-5", "claude-haiku-5-5"]) == PIRATE


async def test_a_loaded_model_not_offered_falls_back_to_the_default(pirate_chat, tmp_path):
    await pirate_chat.send("Ahoy?", options=PIRATE)
    exchanges = load_export(
        export_json(pirate_chat.service, pirate_chat.conversation, PIRATE), FileStore(tmp_path)
    )
    defaults = make_settings(model="claude-haiku-5-5").defaults
    options = loaded_options(exchanges, defaults, ["claude-haiku-5-5"])
    assert options.model == "claude-haiku-5-5"
    assert (options.system_prompt, options.max_tokens, options.thinking) == ("Be a pirate.", 200, True)


async def test_markdown_shows_each_turn_with_its_files(chat_with_files):
    chat, files = chat_with_files
    await chat.send("hello")
    await chat.send("what are these?", files)
    markdown = export_markdown(chat.conversation)
    assert "## You\n\nhello\n\n## Claude (claude-sonnet-5-5)\n\n*Thinking:*\n\n> Hmm.\n\nThought." in markdown
    assert "*Attached: red.png, a.pdf*\n\nwhat are these?" in markdown
    assert "> Be brief." in markdown


async def test_markdown_marks_a_stopped_answer_as_partial():
    words = ScriptedMessage([TextBlock([f"w{i} " for i in range(50)])])
    chat = Chat(Stream.of(words))
    async with chat.stream("count") as reply:
        async for _ in reply:
            if reply.text.count("w") == 3:
                break
    assert "w0 w1 w2 \n\n*Stopped: you stopped this answer; what arrived is shown.*" in export_markdown(
        chat.conversation
    )


async def test_markdown_marks_an_answer_stopped_before_any_of_it_arrived():
    chat = Chat(text_reply("Never seen.", delay=0.5))
    async with chat.stream("count") as reply:
        pass  # left before reading: nothing arrived
    assert reply.status is Status.STOPPED
    markdown = export_markdown(chat.conversation)
    assert markdown.endswith("*Stopped: you stopped this answer before any of it arrived.*\n")
    assert "*(no answer)*" not in markdown


async def test_markdown_marks_a_failed_answer_with_what_went_wrong():
    chat = Chat(error_mid_stream("The first half"))
    with pytest.raises(ChatError):
        await chat.send("question")
    assert (
        "The first half\n\n*Failed: Claude became overloaded mid-answer, so the answer stops here.*"
        in export_markdown(chat.conversation)
    )


async def test_markdown_marks_an_answer_that_failed_before_any_of_it_arrived():
    chat = Chat(Failure(400, "invalid_request_error", "bad request"))
    with pytest.raises(ChatError):
        await chat.send("question")
    assert export_markdown(chat.conversation).endswith(
        "*(no answer)*\n\n*Failed: Claude could not answer (error 400): bad request.*\n"
    )


async def test_markdown_marks_an_answer_of_the_offline_model_as_canned_not_claude():
    chat = Chat(then=offline_script(delay=0))
    await chat.send("hello")
    markdown = export_markdown(chat.conversation)
    assert (
        "## Offline demo model\n\n*Offline demo model: canned reply, not Claude.*\n\n"
        "This is the offline demo model, not Claude"
    ) in markdown
    assert "## Claude" not in markdown


async def test_markdown_shows_the_search_query_and_the_pages_found():
    chat = Chat(fixture("web_search.sse"))
    await chat.send("weather in NYC?")
    markdown = export_markdown(chat.conversation)
    assert "*Searched the web: weather NYC today*" in markdown
    assert (
        f"*Results:*\n\n- {WEATHER_PAGE}\n- {ACCUWEATHER}\n"
        "- [National Weather Service - New York, NY]"
        "(https://forecast.weather.gov/MapClick.php?lat=40.7142&lon=-74.0059)"
    ) in markdown


async def test_markdown_lists_the_cited_sources_after_the_answer():
    chat = Chat(fixture("web_search.sse"))
    await chat.send("weather in NYC?")
    markdown = export_markdown(chat.conversation)
    assert "55°F [[1]](https://world-weather.info/forecast/usa/new_york/may-2025/), and" in markdown
    assert f"Sources:\n\n1. {WEATHER_PAGE}\n2. {ACCUWEATHER}" in markdown


async def test_loading_an_export_restores_every_message_exactly(chat_with_files):
    chat, files = chat_with_files
    await chat.send("hello")
    await chat.send("what are these?", files)
    exported = export_json(chat.service, chat.conversation, chat.settings.defaults)
    restored = Chat(settings=chat.settings)
    restored.conversation.replace(load_export(exported, restored.service.files))
    assert restored.messages == chat.messages


async def test_a_loaded_conversation_is_shown_with_its_files_under_their_own_names(chat_with_files, tmp_path):
    chat, files = chat_with_files
    await chat.send("what are these?", files)
    later = Chat(settings=chat.settings)
    exported = export_json(chat.service, chat.conversation, chat.settings.defaults)
    screen = ChatPage(later.service, ServerSettings()).screen(
        load_export(exported, later.service.files), None
    )
    assert exchanges_on_screen(screen) == 1
    *shown_files, text = screen[0]["content"]
    assert text == "what are these?"
    assert [Path(f["path"]).name for f in shown_files] == ["red.png", "a.pdf"]


async def test_two_loaded_files_of_one_name_are_both_shown(tmp_path):
    chat = Chat(text_reply("Two squares."))
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    write_image(first / "image.png", size=(4, 3)), write_image(second / "image.png", size=(5, 3))
    await chat.send("these?", [first / "image.png", second / "image.png"])
    later = Chat(settings=chat.settings)
    exported = export_json(chat.service, chat.conversation, chat.settings.defaults)
    screen = ChatPage(later.service, ServerSettings()).screen(
        load_export(exported, later.service.files), None
    )
    *shown_files, _text = screen[0]["content"]
    shown = [Path(f["path"]) for f in shown_files]
    assert [p.name for p in shown] == ["image.png", "image.png"] and shown[0] != shown[1]
    assert [p.read_bytes() for p in shown] == [
        (first / "image.png").read_bytes(),
        (second / "image.png").read_bytes(),
    ]


def test_a_document_keeps_its_title_as_its_name(tmp_path):
    pdf = base64.b64encode(write_pdf(tmp_path / "x.pdf").read_bytes()).decode()
    document = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
    }
    body = {"messages": [{"role": "user", "content": [{**document, "title": "q3.pdf"}]}]}
    [exchange] = load_export(json.dumps(body), FileStore(tmp_path / "files"))
    assert [ref.name for ref in exchange.prompt.files] == ["q3.pdf"]


def test_a_trailing_user_message_loads_as_an_unanswered_exchange(tmp_path):
    [exchange] = load_export(
        json.dumps({"messages": [{"role": "user", "content": "hi"}]}), FileStore(tmp_path)
    )
    assert exchange.prompt.text == "hi" and exchange.response is None
    assert exchange.status is Status.STOPPED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"model": "x"}', "has no list of messages"),
        ('{"messages": [{"role": "assistant", "content": "hi"}]}', "message 1 should be from the user"),
        ('{"messages": [{"role": "user", "content": "  "}]}', "message 1 is empty"),
        (
            '{"messages": [{"role": "user", "content": [{"type": "tool_use"}]}]}',
            "message 1 has a block of type 'tool_use'",
        ),
        (
            '{"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url"}}]}]}',
            "a file in message 1 is not base64 data",
        ),
        (
            '{"messages": [{"role": "user", "content": [{"type": "image", "source": '
            f'{{"type": "base64", "media_type": "image/jpeg", "data": "{PNG_PIXEL}"}}}}]}}]}}',
            "claims to be image/jpeg but its content is image/png",
        ),
        ('{"format": "claude-chat-export", "version": 1, "exchanges": []}', "it has no exchanges"),
    ],
)
def test_a_bad_file_is_refused_with_what_is_wrong(tmp_path, data, message):
    with pytest.raises(ChatError, match=message) as raised:
        load_export(data, FileStore(tmp_path), "export.json")
    assert raised.value.kind is ErrorKind.BAD_EXPORT


async def test_an_export_missing_an_attached_file_loads_and_tells_claude_it_is_unavailable(
    chat_with_files, tmp_path
):
    chat, files = chat_with_files
    await chat.send("what are these?", files)
    exported = export_data(chat.service, chat.conversation, chat.settings.defaults)
    exported["attachments"] = {}
    (loaded,) = load_export(json.dumps(exported), FileStore(tmp_path / "empty"))
    later = Chat(settings=chat.settings, files=FileStore(tmp_path / "empty"))
    later.conversation.replace([loaded])
    content = later.messages[0]["content"]
    assert any("red.png was attached here but is unavailable" in block.get("text", "") for block in content)


async def test_an_exported_exchange_with_a_malformed_field_is_refused_with_what_is_wrong(
    chat_with_files, tmp_path
):
    chat, files = chat_with_files
    await chat.send("what are these?", files)
    broken = {
        "timings": [1],
        "prompt": [1],
        "status": "exploded",
        "request": {"output_config": "high"},
        "response": {"content": [{"type": "text", "text": None}]},
        "error": "boom",
    }
    for field, value in broken.items():
        exported = export_data(chat.service, chat.conversation, chat.settings.defaults)
        exported["exchanges"][0][field] = value
        with pytest.raises(ChatError, match=r"The conversation is not valid: exchange 1 ") as raised:
            load_export(json.dumps(exported), FileStore(tmp_path))
        assert raised.value.kind is ErrorKind.BAD_EXPORT, field
