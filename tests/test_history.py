"""The screen maps to exchanges by position; the messages sent to Claude derive from the exchanges."""

from __future__ import annotations

import base64

import pytest

from chat import BlockDelta, ChatError, ErrorKind, Status, TextDelta, ThinkingDelta
from chat.history import NO_TOOLS
from chat.options import TurnOptions
from tests.conftest import Chat, assert_valid_history, write_image
from tests.upstream import fixture, text_reply
from ui.gradio_fixes import exchanges_on_screen

TOOL_USE_ID = "toolu_01T1x1fJ34qAmk2tNTrN7Up6"  # the get_weather call in tests/fixtures/tool_use.sse
FIRST_PAGE = "Weather in New York City in May 2025 (New York) - detailed Weather Forecast for a month"
SIGNATURE = "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL...."


async def stop_at_first(chat: Chat, message: str, delta_type: type) -> None:
    """Send a message and press Stop as the first delta of this type arrives."""
    async with chat.stream(message) as reply:
        async for delta in reply:
            if isinstance(delta, delta_type):
                break
    assert reply.status is Status.STOPPED


# What the screen shows: one exchange per run of user messages


def test_plain_string_history_counts_one_exchange_per_user_message():
    shown = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    assert exchanges_on_screen(shown) == 1


def test_web_page_history_with_text_parts_counts_one_exchange_per_user_message():
    shown = [
        {"role": "user", "content": [{"type": "text", "text": "Q"}], "metadata": None, "options": None},
        {"role": "assistant", "content": [{"type": "text", "text": "A"}], "metadata": None},
    ]
    assert exchanges_on_screen(shown) == 1


def test_display_only_boxes_do_not_count_as_exchanges():
    shown = [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "pondering", "metadata": {"title": "Thinking"}},
        {"role": "assistant", "content": "A"},
        {"role": "assistant", "content": "12 tokens", "metadata": {"title": "Usage"}},
    ]
    assert exchanges_on_screen(shown) == 1


def test_a_user_message_without_an_answer_still_counts_as_an_exchange():
    shown = [
        {"role": "user", "content": "failed"},
        {"role": "assistant", "content": "Nothing was sent.", "metadata": {"title": "Notice"}},
        {"role": "user", "content": "next"},
    ]
    assert exchanges_on_screen(shown) == 2


def test_a_web_page_message_with_a_file_part_is_one_exchange():
    shown = [
        {
            "role": "user",
            "content": [
                {
                    "type": "file",
                    "file": {"path": "/tmp/x/cat.png", "mime_type": "image/png"},
                    "alt_text": None,
                },
            ],
        },
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
    ]
    assert exchanges_on_screen(shown) == 1


def test_an_api_client_message_with_a_file_part_is_one_exchange():
    shown = [
        {"role": "user", "content": [{"path": "/tmp/x/cat.png"}, "what is this?"]},
        {"role": "assistant", "content": "A cat."},
    ]
    assert exchanges_on_screen(shown) == 1


@pytest.mark.parametrize(
    ("history", "count"),
    [("a string", 0), (42, 0), (None, 0), ([{"role": "user", "content": "hi"}, "stray"], 1)],
)
def test_malformed_history_counts_only_its_user_messages(history, count):
    assert exchanges_on_screen(history) == count


def test_content_parts_that_are_not_text_do_not_change_the_count():
    history = [{"role": "user", "content": [{"type": "text", "text": 7}, {"text": "hi"}, 42, None]}]
    assert exchanges_on_screen(history) == 1


async def test_a_stray_item_in_the_history_leaves_the_conversation_as_it_was():
    chat = Chat(text_reply("A1"))
    await chat.send("Q1")
    before = chat.messages
    chat.conversation.keep(exchanges_on_screen([{"role": "user", "content": "Q1"}, 3]))
    assert chat.messages == before


# Keeping the first n exchanges


async def test_unanswered_exchanges_are_not_sent_so_roles_alternate():
    chat = Chat(text_reply("A"), text_reply("  "))
    with pytest.raises(ChatError):
        chat.stream("   ")  # refused: recorded as failed, never answered
    await chat.send("Q")
    await chat.send("blank")  # answered with whitespace only
    assert len(chat.conversation.exchanges) == 3
    assert [m["role"] for m in chat.messages] == ["user", "assistant"]
    assert_valid_history(chat.messages)


async def test_keep_sends_the_recorded_answer_whatever_text_the_screen_shows():
    chat = Chat(text_reply("line one\n    line two"), text_reply("ok"))
    await chat.send("Q")
    shown = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "line one\nline two"}]
    chat.conversation.keep(exchanges_on_screen(shown))
    await chat.send("next")
    assert chat.requests[1]["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "line one\n    line two"}],
    }


async def test_keep_never_adds_exchanges_the_service_never_recorded():
    chat = Chat(text_reply("ok"))
    chat.conversation.keep(
        exchanges_on_screen([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}])
    )
    await chat.send("next")
    assert chat.requests[0]["messages"] == [{"role": "user", "content": "next"}]


async def test_a_kept_exchange_sends_its_file_again_before_its_text(tmp_path):
    chat = Chat(text_reply("A cat."), text_reply("ok"))
    await chat.send("what is this?", [str(write_image(tmp_path / "cat.png"))])
    await chat.send("thanks")
    content = chat.requests[1]["messages"][0]["content"]
    assert [block["type"] for block in content] == ["image", "text"]
    assert content[1]["text"] == "what is this?"


async def test_a_kept_exchange_sends_the_file_as_recorded_not_as_it_is_on_disk_now(tmp_path):
    chat = Chat(text_reply("A cat."), text_reply("ok"))
    path = write_image(tmp_path / "cat.png")
    original = path.read_bytes()
    await chat.send("what is this?", [str(path)])
    write_image(path, size=(9, 9))  # the file on disk changes after it was sent
    await chat.send("thanks")
    image = chat.requests[1]["messages"][0]["content"][0]
    assert base64.b64decode(image["source"]["data"]) == original != path.read_bytes()


async def test_a_kept_exchange_whose_file_is_gone_says_so_instead_of_sending_nothing(tmp_path):
    chat = Chat(text_reply("A cat."), text_reply("ok"))
    await chat.send("", [str(write_image(tmp_path / "cat.png"))])
    [ref] = chat.conversation.exchanges[0].prompt.files
    chat.service.files.path(ref.sha256).unlink()
    await chat.send("thanks")
    assert chat.requests[1]["messages"][0]["content"] == [
        {
            "type": "text",
            "text": "[cat.png was attached here but is unavailable: cat.png is no longer stored.]",
        }
    ]


# Answers of every kind go back valid


async def test_a_tool_use_is_answered_by_a_tool_result_first_in_the_next_user_message():
    chat = Chat(fixture("tool_use.sse"))
    await chat.send("Weather in San Francisco?")
    await chat.send("Never mind.")
    assert chat.requests[1]["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": TOOL_USE_ID, "content": NO_TOOLS, "is_error": True},
            {"type": "text", "text": "Never mind."},
        ],
    }


async def test_a_request_after_a_tool_use_defines_the_tool_and_runs_none():
    chat = Chat(fixture("tool_use.sse"))
    await chat.send("Weather in San Francisco?")
    await chat.send("Never mind.")
    sent = chat.requests[1]
    assert [tool["name"] for tool in sent["tools"]] == ["get_weather"]
    assert sent["tools"][0]["input_schema"]["type"] == "object"
    assert sent["tool_choice"] == {"type": "none"}


async def test_a_history_with_a_tool_use_keeps_the_api_rules():
    chat = Chat(fixture("tool_use.sse"))
    await chat.send("Weather in San Francisco?")
    await chat.send("Never mind.")
    assert [m["role"] for m in chat.requests[1]["messages"]] == ["user", "assistant", "user"]
    assert_valid_history(chat.requests[1]["messages"])
    assert_valid_history(chat.messages)


async def test_a_web_search_answer_goes_back_with_its_search_results_and_citations_unchanged():
    chat = Chat(fixture("web_search.sse"))
    searching = TurnOptions(max_tokens=256, web_search=True)  # with the tool off it goes back as text
    await chat.send("Weather in New York?", options=searching)
    await chat.send("Thanks!", options=searching)
    sent = chat.requests[1]["messages"][1]["content"]
    assert sent == chat.conversation.exchanges[0].content  # every block as it arrived
    assert [block["type"] for block in sent] == [
        "text",
        "server_tool_use",
        "web_search_tool_result",
        "text",
        "text",
        "text",
        "text",
    ]
    assert sent[1] == {
        "type": "server_tool_use",
        "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
        "name": "web_search",
        "input": {"query": "weather NYC today"},
    }
    assert sent[2]["tool_use_id"] == sent[1]["id"]
    assert [r["encrypted_content"] for r in sent[2]["content"]] == [
        "Ev0DCioIAxgCIiQ3NmU4ZmI4OC1k...",
        "EpQECioIAxgCIiQ0YjM3ZDk2Yy1h...",
        "EsoDCioIAxgCIiRhYzE1OTZlNi1i...",
    ]
    assert sent[4]["citations"] == [
        {
            "type": "web_search_result_location",
            "url": "https://world-weather.info/forecast/usa/new_york/may-2025/",
            "title": FIRST_PAGE,
            "encrypted_index": "Eo8BCioIAhgBIiQ3NmU4ZmI4OC1k..",
            "cited_text": "Tuesday, 20 May. Day +68°F, night +55°F. Mostly cloudy.",
        }
    ]
    assert_valid_history(chat.requests[1]["messages"])


async def test_redacted_thinking_goes_back_unchanged():
    chat = Chat(fixture("redacted_thinking.sse"))
    await chat.send("Analyse this.")
    await chat.send("And then?")
    assert chat.requests[1]["messages"][1]["content"] == [
        {
            "type": "thinking",
            "thinking": "Let me analyze this step by step...",
            "signature": SIGNATURE,
        },
        {
            "type": "redacted_thinking",
            "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP...",
        },
        {"type": "text", "text": "Based on my analysis..."},
    ]


async def test_a_block_of_an_unknown_type_goes_back_as_it_came():
    chat = Chat(fixture("unknown_block.sse"))
    await chat.send("Show me a widget.")
    await chat.send("Thanks.")
    assert chat.requests[1]["messages"][1]["content"] == [
        {"type": "text", "text": "Here is a widget:"},
        {"type": "future_widget", "payload": {"x": 1}},
    ]


async def test_an_answer_stopped_during_a_tool_call_goes_back_as_its_text_only():
    chat = Chat(fixture("tool_use.sse"), text_reply("ok"))
    await stop_at_first(chat, "Weather in San Francisco?", BlockDelta)  # the tool_use block has started
    await chat.send("Never mind.")
    sent = chat.requests[1]
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in San Francisco?"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Okay, let's check the weather for San Francisco, CA:"}],
        },
        {"role": "user", "content": "Never mind."},
    ]
    assert "tools" not in sent and "tool_choice" not in sent


async def test_an_answer_stopped_after_its_thinking_goes_back_as_its_text_only():
    chat = Chat(fixture("redacted_thinking.sse"), text_reply("ok"))
    await stop_at_first(chat, "Analyse this.", TextDelta)
    await chat.send("And then?")
    assert chat.requests[1]["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Based on my "}],
    }


async def test_an_answer_stopped_during_unsigned_thinking_is_not_sent_back():
    chat = Chat(fixture("thinking.sse"), text_reply("ok"))
    await stop_at_first(chat, "27 * 453?", ThinkingDelta)  # before the thinking's signature arrived
    await chat.send("Go on.")
    assert chat.requests[1]["messages"] == [{"role": "user", "content": "Go on."}]


# Refused messages keep their place


async def test_a_refused_message_is_recorded_as_failed_and_never_sent():
    chat = Chat(text_reply("A1"), text_reply("A3"))
    await chat.send("Q1")
    with pytest.raises(ChatError):
        chat.stream("   ")
    await chat.send("Q3")
    refused = chat.conversation.exchanges[1]
    assert (refused.status, refused.error.kind) == (Status.FAILED, ErrorKind.REFUSED)
    assert len(chat.requests) == 2
    assert [m["content"] for m in chat.requests[1]["messages"] if m["role"] == "user"] == ["Q1", "Q3"]


async def test_retrying_after_a_refused_message_drops_exactly_the_retried_exchange():
    chat = Chat(text_reply("A1"), text_reply("A3"), text_reply("A3 again"))
    await chat.send("Q1")
    with pytest.raises(ChatError):
        chat.stream("   ")
    await chat.send("Q3")
    screen = [  # Retry on Q3: the screen keeps Q1 and the refused message with its notice
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "   "},
        {"role": "assistant", "content": "Nothing was sent.", "metadata": {"title": "Notice"}},
    ]
    chat.conversation.keep(exchanges_on_screen(screen))
    await chat.send("Q3")
    assert [e.prompt.text for e in chat.conversation.exchanges] == ["Q1", "   ", "Q3"]
    assert chat.requests[2]["messages"] == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": [{"type": "text", "text": "A1"}]},
        {"role": "user", "content": "Q3"},
    ]
