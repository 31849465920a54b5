"""Hostile requests and conversation files (issue 12, item 4): each bound holds, says so, sends nothing.

The whole request is bounded (the API's 32 MB on the JSON body, a configurable number of
messages), and a conversation file is bounded in size, depth, numbers and exchanges before it
is parsed or stored. Every refusal is a sentence naming what is wrong and the limit.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from chat import ChatError, ChatService, ErrorKind, Guards, Status
from chat.attachments import MB, check_request, request_size
from chat.config import Settings
from chat.exchange import Exchange, Prompt
from chat.export import MAX_JSON_DEPTH, export_data, export_json, load_export
from chat.files import FileStore
from tests.conftest import Chat, launched_app, make_settings, write_image, write_pdf
from tests.loopback_api import LoopbackMessagesAPI
from tests.test_page import Site, screen_text
from tests.upstream import TEST_KEY, InProcess, fixture, replies
from ui.page import ChatPage
from ui.render import exchange_messages, shown
from ui.server import ServerSettings
from ui.visitors import Tab

NOTHING_LOADED = "Nothing was loaded."
NOTHING_SENT = "nothing was sent"


class GuardedSite(Site):
    """The page's handlers over a scripted upstream, with these guards and this database."""

    def __init__(self, data_dir: Path, database: str | None = None, **guards: Any) -> None:
        self.upstream = InProcess(replies())
        settings = make_settings(
            api_key=TEST_KEY, max_tokens=256, data_dir=data_dir, database=database, **guards
        )
        service = ChatService(self.upstream.client, settings, files=FileStore(data_dir / "files"))
        self.page = ChatPage(service, ServerSettings(update_interval=0.0))

    async def stored(self, tab: Tab) -> list[Any]:
        """The tab owner's stored conversations."""
        return await (await self.page.library()).list(tab.owner)

    async def refused_load(self, path: Path, tab: Tab) -> str:
        """Load a file that must be refused; return what the page says, having checked nothing was stored."""
        with pytest.raises(gr.Error) as raised:
            await self.page.load(str(path), tab)
        assert await self.stored(tab) == []
        return str(raised.value.message)


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Callable[..., GuardedSite]]:
    made: list[GuardedSite] = []

    def make(database: str | None = None, **guards: Any) -> GuardedSite:
        made.append(GuardedSite(tmp_path / f"data-{len(made)}", database, **guards))
        return made[-1]

    yield make
    for each in made:
        await asyncio.wait_for(each.page.close(), 10)


def answered(prompt: str, answer: str) -> Exchange:
    """An ended exchange: this prompt, answered with this text."""
    response = {"type": "message", "role": "assistant", "content": [{"type": "text", "text": answer}]}
    return Exchange(Prompt(prompt), {"model": "claude-sonnet-5-5"}, status=Status.COMPLETE, response=response)


def messages_body(turns: int) -> dict[str, Any]:
    """A plain Messages API body of this many answered turns."""
    messages: list[dict[str, Any]] = []
    for number in range(turns):
        messages += [
            {"role": "user", "content": f"q{number}"},
            {"role": "assistant", "content": f"a{number}"},
        ]
    return {"model": "claude-sonnet-5-5", "max_tokens": 100, "messages": messages}


def write_json(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


# --- the whole request ---------------------------------------------------------------------------


async def test_a_request_over_32_mb_as_json_is_refused_and_nothing_is_sent():
    chat = Chat()
    # Text only: the old check summed file data, so 33 MB of history went upstream unchecked.
    chat.conversation.replace([answered(f"part {n}", "x" * (11 * MB)) for n in range(3)])
    with pytest.raises(ChatError) as raised:
        chat.stream("and now?")
    error = raised.value
    assert error.kind is ErrorKind.REFUSED and error.facts["limit"] == 32 * MB
    assert "the request is 33.0 MB; Claude accepts requests up to 32.0 MB" in error.message
    assert NOTHING_SENT in error.message
    assert chat.requests == []
    assert chat.conversation.exchanges[-1].status is Status.FAILED


def test_the_request_size_is_the_json_body_the_sdk_sends(tmp_path):
    request = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "héllo ✓"}]}
    sent = '{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"héllo ✓"}],"stream":true}'
    assert request_size(request) == len(sent.encode("utf-8"))
    chat = Chat()
    chat.conversation.replace([answered('a "quoted" ✓ line\n', "fine")])
    image = write_image(tmp_path / "red.png")
    chat.service.stream_reply(chat.conversation, "look", [image])  # recorded, not yet sent
    body = chat.service.request(chat.conversation, prompt=chat.conversation.exchanges[-1].prompt)
    sdk = json.dumps({**body, "stream": True}, ensure_ascii=False, separators=(",", ":"))
    assert request_size(body) == len(sdk.encode("utf-8"))


async def test_a_request_just_under_32_mb_is_sent_whole():
    unbudgeted = make_settings(api_key=TEST_KEY, max_tokens=256, daily_token_budget=0, visitor_daily_tokens=0)
    chat = Chat(settings=unbudgeted)  # 31 MB of text could cost 16M tokens: more than a day's budget
    chat.conversation.replace([answered("big", "x" * (31 * MB))])
    await chat.send("and now?")
    (sent,) = chat.requests
    assert len(sent["messages"]) == 3 and len(sent["messages"][1]["content"][0]["text"]) == 31 * MB


async def test_a_history_over_the_message_limit_is_refused_with_the_limit_named():
    chat = Chat(settings=make_settings(api_key=TEST_KEY, max_tokens=256, max_history_messages=10))
    chat.conversation.replace([answered(f"q{n}", f"a{n}") for n in range(5)])  # 10 messages, then this one
    with pytest.raises(ChatError) as raised:
        chat.stream("one more")
    error = raised.value
    assert error.kind is ErrorKind.REFUSED and (error.facts["messages"], error.facts["limit"]) == (11, 10)
    assert "it has 11 messages, and this app sends at most 10 (5 turns)" in error.message
    assert NOTHING_SENT in error.message
    assert chat.requests == []


async def test_a_history_at_the_message_limit_is_sent():
    chat = Chat(settings=make_settings(api_key=TEST_KEY, max_tokens=256, max_history_messages=11))
    chat.conversation.replace([answered(f"q{n}", f"a{n}") for n in range(5)])
    await chat.send("one more")
    assert len(chat.requests[0]["messages"]) == 11


def test_the_default_history_limit_is_400_messages_and_a_5000_message_history_is_refused():
    assert Guards().max_history_messages == 400
    request = messages_body(2500)
    with pytest.raises(ChatError, match=r"5,000 messages, and this app sends at most 400 \(200 turns\)"):
        check_request(request, Guards().max_history_messages)


def test_the_history_and_load_limits_are_read_from_the_environment():
    guards = Settings.from_env({"CHAT_MAX_HISTORY_MESSAGES": "50", "CHAT_MAX_LOAD_MB": "3"}).guards
    assert (guards.max_history_messages, guards.max_load_bytes) == (50, 3 * MB)
    assert Guards().max_load_bytes == 10 * MB
    for name in ("CHAT_MAX_HISTORY_MESSAGES", "CHAT_MAX_LOAD_MB"):
        with pytest.raises(ChatError, match=rf"{name} must be a whole number above 0") as raised:
            Settings.from_env({name: "0"})
        assert raised.value.kind is ErrorKind.CONFIG


async def test_continuing_a_loaded_conversation_over_32_mb_is_refused_and_nothing_is_sent(guarded, tmp_path):
    made = guarded(max_load_bytes=64 * MB)  # an operator who raised the load limit
    body = messages_body(4)
    for message in body["messages"][1::2]:
        message["content"] = "y" * (9 * MB)
    tab = made.tab()
    view = await made.page.load(str(write_json(tmp_path / "big.json", body)), tab)
    updates = [update async for update in made.page.respond("and now?", view[1], tab)]
    assert made.upstream.requests == []
    notice = screen_text((updates[-1],))[-1]
    assert "Claude accepts requests up to 32.0 MB" in notice and NOTHING_SENT in notice


# --- loading a conversation file: size, depth, count ---------------------------------------------


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    with LoopbackMessagesAPI() as api:
        settings = make_settings(api_key=TEST_KEY, base_url=api.url, data_dir=tmp_path / "data")
        with launched_app(settings) as url:
            yield url


def test_an_11_mb_load_file_is_refused_with_the_limit_through_the_app(app_url, tmp_path):
    body = messages_body(1)
    body["messages"][1]["content"] = "z" * (11 * MB)
    path = write_json(tmp_path / "big.json", body)
    with pytest.raises(AppError) as raised:
        Client(app_url, verbose=False).predict(handle_file(str(path)), api_name="/load")
    message = str(raised.value)
    assert "big.json is too large to load: this app loads conversation files up to 10.0 MB." in message
    assert NOTHING_LOADED in message


def test_json_nested_100k_deep_is_refused_with_a_clear_message_through_the_app(app_url, tmp_path):
    path = write_json(tmp_path / "deep.json", '{"messages": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(AppError) as raised:
        Client(app_url, verbose=False).predict(handle_file(str(path)), api_name="/load")
    message = str(raised.value)
    assert (
        f"deep.json is not a conversation export: it nests more than {MAX_JSON_DEPTH} levels deep" in message
    )
    assert NOTHING_LOADED in message


async def test_a_load_file_over_the_configured_size_is_refused_unread(guarded, tmp_path):
    made = guarded(max_load_bytes=1 * MB)
    body = messages_body(1)
    body["messages"][1]["content"] = "z" * MB
    said = await made.refused_load(write_json(tmp_path / "chat.json", body), made.tab())
    assert (
        said
        == f"chat.json is too large to load: this app loads conversation files up to 1.0 MB. {NOTHING_LOADED}"
    )


@pytest.mark.parametrize(
    ("depth", "loads"), [(MAX_JSON_DEPTH - 1, True), (MAX_JSON_DEPTH + 1, False)], ids=["under", "over"]
)
def test_nesting_is_bounded_inside_an_otherwise_valid_export(tmp_path, depth, loads):
    body = messages_body(1)
    body["metadata"] = {"note": json.loads("[" * (depth - 1) + "]" * (depth - 1))}  # the body is level 1
    data = json.dumps(body)
    if loads:
        assert len(load_export(data, FileStore(tmp_path))) == 1
    else:
        with pytest.raises(ChatError, match=rf"nests more than {MAX_JSON_DEPTH} levels deep"):
            load_export(data, FileStore(tmp_path))


def test_brackets_inside_strings_and_escapes_do_not_count_as_nesting(tmp_path):
    body = messages_body(1)
    body["messages"][0]["content"] = '\\"[' * 1000 + "{" * 1000 + '"\\'
    (loaded,) = load_export(json.dumps(body), FileStore(tmp_path))
    assert loaded.prompt.text == body["messages"][0]["content"]


async def test_a_load_over_the_history_limit_is_refused_with_the_limit(guarded, tmp_path):
    made = guarded()
    said = await made.refused_load(write_json(tmp_path / "long.json", messages_body(201)), made.tab())
    assert said == (
        "long.json holds 402 messages; this app continues conversations of up to 400 messages "
        f"(200 exchanges). {NOTHING_LOADED}"
    )


async def test_an_export_over_the_exchange_limit_is_refused_with_the_limit(guarded, tmp_path):
    made = guarded(max_history_messages=4)
    chat = Chat(settings=made.page.service.settings)
    chat.conversation.replace([answered(f"q{n}", f"a{n}") for n in range(3)])
    exported = export_json(chat.service, chat.conversation, chat.settings.defaults)
    said = await made.refused_load(write_json(tmp_path / "three.json", exported), made.tab())
    assert "three.json holds 3 exchanges; this app continues conversations of up to 2 exchanges" in said


async def test_a_load_at_the_history_limit_is_stored_and_shown(guarded, tmp_path):
    made = guarded(max_history_messages=6)
    tab = made.tab()
    view = await made.page.load(str(write_json(tmp_path / "ok.json", messages_body(3))), tab)
    assert screen_text(view)[:2] == ["q0", "a0"]
    (info,) = await made.stored(tab)
    assert info.exchange_count == 3


# --- loading a conversation file: every malformed one gets its sentence ---------------------------

BODY = json.dumps(messages_body(1))
MALFORMED = {
    "truncated": (BODY[: len(BODY) // 2], "is not valid JSON (Unterminated string starting at: line 1"),
    "empty": ("", "is not valid JSON (Expecting value: line 1, column 1)"),
    "not UTF-8": (b'{"messages": "\xff"}', "is not UTF-8 text (byte 15 is not valid)"),
    "a raw NUL byte": (BODY.replace("q0", "q\x000"), "is not valid JSON (Invalid control character at"),
    "not an object": ("[1, 2]", "is not a conversation export: it has no list of messages"),
    "NaN": (BODY.replace("100", "NaN"), "it holds NaN, which is not a number JSON allows"),
    "a float beyond range": (BODY.replace("100", "1e999"), "it holds a number too large to use (1e999)"),
    "a huge integer": (BODY.replace("100", "9" * 5000), "it holds a number with more than 19 digits"),
    "a lone surrogate": (BODY.replace("q0", "\\udc80"), "holds text that is not valid Unicode"),
    "a million lists": ("[" + "[]," * 1_000_000 + "[]]", "it holds more than 100,000 lists and objects"),
    "a number as the model": (BODY.replace('"claude-sonnet-5-5"', "5"), "its request options are malformed"),
    "a string as the messages": ('{"messages": "hi"}', "it has no list of messages"),
    "a message that is a number": ('{"messages": [5]}', "message 1 should be from the user"),
    "a block that is a list": (
        '{"messages": [{"role": "user", "content": [[]]}]}',
        "message 1 has a block of type None",
    ),
    "a block type that is an object": (
        '{"messages": [{"role": "user", "content": [{"type": {"a": 1}}]}]}',
        "message 1 has a block of type 'dict'",
    ),
    "an answer with a number as its text": (
        '{"messages": [{"role": "user", "content": "hi"}, '
        '{"role": "assistant", "content": [{"type": "text", "text": 5}]}]}',
        "message 2 has a malformed text block",
    ),
    "an export with exchanges as an object": (
        '{"format": "claude-chat-export", "exchanges": {"a": 1}}',
        "it has no exchanges",
    ),
    "an export with an exchange that is a string": (
        '{"format": "claude-chat-export", "exchanges": ["hi"]}',
        "exchange 1 is not an exchange",
    ),
}


@pytest.mark.parametrize(("data", "sentence"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_each_malformed_file_gets_its_sentence_and_nothing_is_loaded(guarded, tmp_path, data, sentence):
    made = guarded()
    path = tmp_path / "chat.json"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    said = await made.refused_load(path, made.tab())
    assert sentence in said and said.endswith(NOTHING_LOADED)


async def test_a_file_that_cannot_be_read_is_said_so(guarded, tmp_path):
    made = guarded()
    said = await made.refused_load(tmp_path / "gone.json", made.tab())
    assert said == f"gone.json could not be read: No such file or directory. {NOTHING_LOADED}"


# --- loading a conversation file: names and titles ---------------------------------------------------


def document_body(title: str, pdf: bytes) -> dict[str, Any]:
    source = {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf).decode()}
    content = [{"type": "document", "title": title, "source": source}, {"type": "text", "text": "read it"}]
    return {"messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("..", "document-1.pdf"),
        ("/", "document-1.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\q3.pdf", "q3.pdf"),
        ("q3\x00.pdf", "q3.pdf"),
        ("\u202egpj.pdf", "gpj.pdf"),
        ("x" * 300 + ".pdf", "x" * 96 + ".pdf"),
    ],
    ids=["dot-dot", "slash", "a path up", "a windows path", "NUL", "a direction override", "300 characters"],
)
async def test_a_loaded_document_named_with_a_path_or_control_characters_is_shown_under_a_safe_name(
    guarded, tmp_path, title, name
):
    made = guarded()
    pdf = write_pdf(tmp_path / "source.pdf").read_bytes()
    path = write_json(tmp_path / "doc.json", document_body(title, pdf))
    view = await made.page.load(str(path), made.tab())
    (shown_file, _text) = view[0][0]["content"]
    shown_path = Path(shown_file["path"])
    assert shown_path.name == name and shown_path.read_bytes() == pdf
    assert shown_path.parent.parent.name == "downloads"  # written where the screen's files go, nowhere else


async def test_a_title_with_nul_and_control_characters_is_cleaned_and_stored(guarded, tmp_path, database_url):
    made = guarded(database=database_url)  # SQLite and PostgreSQL (which refuses NUL in text)
    body = messages_body(1)
    body["messages"][0]["content"] = "Plans\x00 for\x1b[31m Q3\u202e\nsecond line"
    tab = made.tab()
    view = await made.page.load(str(write_json(tmp_path / "nul.json", body)), tab)
    (info,) = await made.stored(tab)
    assert info.title == "Plans for [31m Q3"
    assert view[-2] == "Plans for [31m Q3"  # the title box
    (stored,) = await (await made.page.library()).store.exchanges(tab.owner, info.id)
    assert stored.prompt.text == "Plans for\x1b[31m Q3\u202e\nsecond line"  # only the NUL is gone


async def test_a_nul_anywhere_in_a_loaded_file_is_dropped_so_any_database_stores_it(
    guarded, tmp_path, database_url
):
    made = guarded(database=database_url)
    body = messages_body(1)
    body["messages"][1]["content"] = "an\x00swer"
    body["system"] = "be\x00 brief"
    text = json.dumps(body).replace("q0", "\\\\u0000 stays")  # an escaped backslash, then text: kept
    tab = made.tab()
    await made.page.load(str(write_json(tmp_path / "nul.json", text)), tab)
    library = await made.page.library()
    (info,) = await made.stored(tab)
    (stored,) = await library.store.exchanges(tab.owner, info.id)
    assert (stored.prompt.text, stored.text) == ("\\u0000 stays", "answer")
    assert stored.request["system"] == "be brief"


# --- loading a conversation file: a little fuzzing ------------------------------------------------


@pytest.fixture
async def rich_export(tmp_path: Path) -> dict[str, Any]:
    """A real export: files, thinking, a web search with citations, and a tool call."""
    chat = Chat(fixture("thinking.sse"), fixture("web_search.sse"), fixture("tool_use.sse"))
    files = [str(write_image(tmp_path / "red.png")), str(write_pdf(tmp_path / "a.pdf"))]
    await chat.send("look at these", files)
    await chat.send("search the weather")
    await chat.send("and in SF?")
    return export_data(chat.service, chat.conversation, chat.settings.defaults)


def paths(data: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value, parents first (base64 data only once: it is one string)."""
    yield where
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, (*where, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from paths(value, (*where, index))


def replaced(data: Any, where: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(data)
    parent = changed
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    return changed


WRONG_VALUES = [None, 0, -1, 2**62, 1.5, True, "", "..\x00/", [], {}, [[{}]], {"type": None}]


def test_wrong_types_at_every_level_are_refused_with_a_sentence_or_loaded_whole(rich_export, tmp_path):
    service = Chat().service
    files = FileStore(tmp_path / "files")
    outcomes = {"refused": 0, "loaded": 0}
    for where in list(paths(rich_export))[1:]:
        for value in WRONG_VALUES:
            data = json.dumps(replaced(rich_export, where, value))
            try:
                exchanges = load_export(data, files, "chat.json")
            except ChatError as error:
                assert error.kind is ErrorKind.BAD_EXPORT, (where, value)
                assert error.message.endswith(NOTHING_LOADED), (where, value)
                assert "unexpected shape" not in error.message, (where, value, error.message)
                outcomes["refused"] += 1
                continue
            # Loaded: it must draw, build its next request, and store as JSON, all without failing.
            for exchange in exchanges:
                exchange_messages(shown(exchange), service.prices)
                json.dumps(exchange.to_dict(), allow_nan=False)
            conversation = service.conversation(exchanges)
            check_request(service.request(conversation, prompt=Prompt("next")))
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 100 and outcomes["loaded"] > 100  # both kinds of cases were tried


def test_the_plain_messages_body_of_an_export_survives_the_same_fuzzing(rich_export, tmp_path):
    service = Chat().service
    files = FileStore(tmp_path / "files")
    body = rich_export["request"]
    for where in list(paths(body))[1:]:
        for value in WRONG_VALUES:
            data = json.dumps(replaced(body, where, value))
            try:
                exchanges = load_export(data, files, "body.json")
            except ChatError as error:
                assert error.kind is ErrorKind.BAD_EXPORT and error.message.endswith(NOTHING_LOADED)
                assert "unexpected shape" not in error.message, (where, value, error.message)
                continue
            for exchange in exchanges:
                exchange_messages(shown(exchange), service.prices)
                json.dumps(exchange.to_dict(), allow_nan=False)
            check_request(service.request(service.conversation(exchanges), prompt=Prompt("next")))


def test_an_export_cut_anywhere_is_refused_as_invalid_json(rich_export, tmp_path):
    data = json.dumps(rich_export)
    files = FileStore(tmp_path / "files")
    for cut in range(0, len(data) - 1, max(1, len(data) // 200)):
        with pytest.raises(ChatError) as raised:
            load_export(data[:cut], files, "cut.json")
        message = raised.value.message
        assert message.startswith("cut.json is not a conversation export: it is not valid JSON ("), cut
        assert message.endswith(NOTHING_LOADED)


def test_a_real_export_nests_well_within_the_depth_bound(rich_export):
    deepest = max(len(where) for where in paths(rich_export))
    assert deepest + 1 <= MAX_JSON_DEPTH // 4  # levels counted from 1 at the top


# --- the event loop during a big load -------------------------------------------------------------


async def test_a_max_size_load_leaves_the_event_loop_free_for_other_tabs(guarded, tmp_path):
    made = guarded()
    body = messages_body(200)  # the most exchanges, and just under the 10 MB
    for message in body["messages"]:
        message["content"] = "w " * 12_600
    path = write_json(tmp_path / "big.json", body)
    assert 9.5 * MB < path.stat().st_size < 10 * MB
    await made.page.library()  # opened already, as in a running app
    gaps: list[float] = []
    loading = True

    async def other_tabs() -> None:  # what a stream needs: the loop, every few milliseconds
        last = time.monotonic()
        while loading:
            await asyncio.sleep(0.005)
            gaps.append(time.monotonic() - last)
            last = time.monotonic()

    ticking = asyncio.create_task(other_tabs())
    started = time.monotonic()
    view = await made.page.load(str(path), made.tab())
    took, loading = time.monotonic() - started, False
    await ticking
    assert len(view[0]) >= 400
    assert max(gaps) < max(0.5, took / 2), f"the loop stalled {max(gaps):.2f} s of a {took:.2f} s load"
