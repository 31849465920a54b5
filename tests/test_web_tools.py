"""Claude's server tools, web search and web fetch: the request, the history, the receipt, offline."""

from __future__ import annotations

import dataclasses
import json

import pytest

from chat import BlockDelta, ChatError, ChatService, ErrorKind, Prompt, make_client
from chat.config import Settings
from chat.offline import offline_message, search_query
from chat.options import TurnOptions, WebTools
from chat.usage import PriceTable, TokenUsage, turn_stats
from chat.wire import ScriptedMessage, ServerToolUseBlock, Stream, TextBlock, message_events, recorded
from tests.conftest import Chat, assert_valid_history, make_settings
from tests.upstream import FIXTURES, fixture
from ui.render import exchange_messages, shown, usage_box

OFF = TurnOptions(model="claude-sonnet-5-5", max_tokens=256)
SEARCH = dataclasses.replace(OFF, web_search=True)
SEARCH_AND_FETCH = dataclasses.replace(OFF, web_search=True, web_fetch=True)
NEWS = "What is the latest news today?"


def request(options: TurnOptions, chat: Chat | None = None) -> dict:
    chat = chat or Chat()
    return chat.service.request(chat.conversation, options, Prompt("hi"))


def offline_service(**settings: object) -> ChatService:
    built = make_settings(offline_delay=0, **settings)
    return ChatService(make_client(built.client), built)


async def offline_reply(service: ChatService, text: str, options: TurnOptions | None = None):
    conversation = service.conversation()
    async with service.stream_reply(conversation, text, options=options) as reply:
        await reply.collect()
    return reply, conversation


# --- the request ---------------------------------------------------------------------------------


def test_with_the_web_tools_off_the_request_carries_no_tools():
    assert "tools" not in request(OFF)


def test_web_search_on_sends_the_newest_web_search_tool_with_its_max_uses():
    assert request(SEARCH)["tools"] == [{"type": "web_search_20260318", "name": "web_search", "max_uses": 5}]


def test_web_fetch_on_sends_the_newest_web_fetch_tool_with_citations_on():
    assert request(dataclasses.replace(OFF, web_fetch=True))["tools"] == [
        {"type": "web_fetch_20260318", "name": "web_fetch", "max_uses": 5, "citations": {"enabled": True}}
    ]


async def test_a_search_request_goes_through_the_sdk_with_no_beta_header():
    chat = Chat(fixture("web_search.sse"))
    await chat.send("Weather in New York?", options=SEARCH_AND_FETCH)
    (call,) = chat.upstream.transport.calls
    assert [tool["name"] for tool in call.body["tools"]] == ["web_search", "web_fetch"]
    assert "anthropic-beta" not in call.headers


def test_the_environment_turns_web_search_and_web_fetch_on_by_default():
    options = TurnOptions.from_env({"CHAT_WEB_SEARCH": "1", "CHAT_WEB_FETCH": "on"})
    assert (options.web_search, options.web_fetch) == (True, True)
    assert (TurnOptions.from_env({}).web_search, TurnOptions.from_env({}).web_fetch) == (False, False)


def test_the_environment_sets_max_uses_and_allowed_domains_on_both_tools():
    environ = {"CHAT_WEB_MAX_USES": "2", "CHAT_WEB_ALLOWED_DOMAINS": " Docs.Python.org, example.com ,"}
    options = dataclasses.replace(TurnOptions.from_env(environ), web_search=True, web_fetch=True)
    for tool in request(options)["tools"]:
        assert tool["max_uses"] == 2
        assert tool["allowed_domains"] == ["docs.python.org", "example.com"]
        assert "blocked_domains" not in tool


def test_the_environment_sets_blocked_domains():
    options = dataclasses.replace(
        TurnOptions.from_env({"CHAT_WEB_BLOCKED_DOMAINS": "spam.example"}), web_search=True
    )
    (tool,) = request(options)["tools"]
    assert tool["blocked_domains"] == ["spam.example"] and "allowed_domains" not in tool


def test_allowed_and_blocked_domains_together_are_a_config_error():
    environ = {"CHAT_WEB_ALLOWED_DOMAINS": "a.example", "CHAT_WEB_BLOCKED_DOMAINS": "b.example"}
    with pytest.raises(ChatError) as raised:
        Settings.from_env(environ)
    assert raised.value.kind is ErrorKind.CONFIG
    assert raised.value.message == (
        "CHAT_WEB_BLOCKED_DOMAINS must be empty when CHAT_WEB_ALLOWED_DOMAINS is set "
        "(the API takes one list or the other), not 'b.example'."
    )


def test_a_domain_written_with_its_scheme_is_a_config_error():
    with pytest.raises(ChatError, match=r"CHAT_WEB_ALLOWED_DOMAINS must list domains .* without http://"):
        TurnOptions.from_env({"CHAT_WEB_ALLOWED_DOMAINS": "https://example.com"})


def test_a_max_uses_of_zero_is_a_config_error():
    with pytest.raises(ChatError, match="CHAT_WEB_MAX_USES must be a whole number above 0"):
        TurnOptions.from_env({"CHAT_WEB_MAX_USES": "0"})


def test_the_toggles_are_read_back_from_a_recorded_request():
    fallback = TurnOptions(web_tools=WebTools(max_uses=3))
    recorded_request = {key: value for key, value in request(SEARCH).items() if key != "messages"}
    options = TurnOptions.from_request(recorded_request, fallback)
    assert (options.web_search, options.web_fetch) == (True, False)
    assert options.web_tools == fallback.web_tools  # app-wide: today's limits, not the recorded ones
    assert not TurnOptions.from_request({"model": "m", "max_tokens": 5}, fallback).web_search


def test_a_client_tool_named_like_a_server_tool_is_not_read_back_as_one():
    client_tool = {"name": "web_search", "description": "x", "input_schema": {"type": "object"}}
    options = TurnOptions.from_request({"model": "m", "max_tokens": 5, "tools": [client_tool]}, OFF)
    assert not options.web_search


async def test_with_web_search_on_a_past_tool_call_keeps_its_placeholder_but_not_tool_choice_none():
    chat = Chat(fixture("tool_use.sse"))
    await chat.send("Weather in San Francisco?")
    sent = request(SEARCH, chat)
    assert [tool["name"] for tool in sent["tools"]] == ["web_search", "get_weather"]
    assert "tool_choice" not in sent  # `none` would forbid the search too
    assert_valid_history(sent["messages"])


async def test_with_web_search_off_a_past_tool_call_still_gets_tool_choice_none():
    chat = Chat(fixture("tool_use.sse"))
    await chat.send("Weather in San Francisco?")
    sent = request(OFF, chat)
    assert [tool["name"] for tool in sent["tools"]] == ["get_weather"]
    assert sent["tool_choice"] == {"type": "none"}


# --- the history ---------------------------------------------------------------------------------


async def test_a_search_answer_goes_back_as_its_text_once_web_search_is_off():
    chat = Chat(fixture("web_search.sse"))
    await chat.send("Weather in New York?", options=SEARCH)
    await chat.send("Thanks!", options=OFF)
    answer = chat.requests[1]["messages"][1]
    (block,) = answer["content"]
    assert block["type"] == "text" and "citations" not in block
    assert block["text"].startswith("I'll check the current weather in New York City for you.\n\n")
    assert "a low around 55°F, and there is a 40% chance of showers" in block["text"]
    assert "tools" not in chat.requests[1]
    assert_valid_history(chat.requests[1]["messages"])


async def test_an_answer_the_api_paused_mid_search_goes_back_as_its_text():
    paused = ScriptedMessage(
        [TextBlock(["Let me look that up."]), ServerToolUseBlock("srvtoolu_1", {"query": "news"})],
        stop_reason="pause_turn",
    )
    chat = Chat(Stream.of(paused))
    await chat.send("News today?", options=SEARCH)
    await chat.send("continue", options=SEARCH)
    answer = chat.requests[1]["messages"][1]
    assert answer["content"] == [{"type": "text", "text": "Let me look that up."}]
    assert_valid_history(chat.requests[1]["messages"])


async def test_a_search_answer_goes_back_whole_while_web_search_stays_on():
    chat = Chat(fixture("web_search.sse"))
    await chat.send("Weather in New York?", options=SEARCH)
    await chat.send("Thanks!", options=SEARCH)
    assert chat.requests[1]["messages"][1]["content"] == chat.conversation.exchanges[0].content


async def test_a_search_answer_goes_back_as_text_when_only_web_fetch_is_on():
    chat = Chat(fixture("web_search.sse"))
    await chat.send("Weather in New York?", options=SEARCH)
    sent = request(dataclasses.replace(OFF, web_fetch=True), chat)
    assert [block["type"] for block in sent["messages"][1]["content"]] == ["text"]


# --- the receipt ---------------------------------------------------------------------------------


async def test_the_receipt_counts_the_searches_and_adds_their_price():
    chat = Chat(fixture("web_search.sse"))
    reply = await chat.send("Weather in New York?", options=SEARCH)
    prices = PriceTable.load()
    stats = turn_stats(reply.exchange, prices)
    assert stats.usage.web_searches == 1 and stats.usage.web_fetches == 0
    tokens = prices.for_model("claude-sonnet-5-5").cost(stats.usage)  # type: ignore[union-attr]
    assert stats.cost == pytest.approx(tokens + 10.0 / 1000)


def test_web_search_is_priced_at_ten_dollars_a_thousand_and_web_fetch_at_nothing():
    tools = PriceTable.load().tools
    assert tools.cost(TokenUsage(web_searches=1000)) == pytest.approx(10.0)
    assert tools.cost(TokenUsage(web_fetches=1000)) == 0.0


def test_usage_reads_the_server_tool_counts():
    usage = TokenUsage.from_api(
        {"input_tokens": 1, "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 3}}
    )
    assert (usage.web_searches, usage.web_fetches) == (2, 3)


async def test_the_usage_box_says_the_searches_of_the_answer_and_of_the_whole_chat():
    chat = Chat(fixture("web_search.sse"), fixture("web_search.sse"))
    await chat.send("Weather in New York?", options=SEARCH)
    reply = await chat.send("And tomorrow?", options=SEARCH)
    prices = PriceTable.load()
    box = usage_box(turn_stats(reply.exchange, prices), chat.conversation.spend, prices)
    assert " · 1 search · " in box.metadata["log"]  # type: ignore[index]
    this_answer, this_chat, _ = box.content.split("\n\n")  # type: ignore[union-attr]
    assert "output tokens, 1 search;" in this_answer
    assert "output tokens, 2 searches;" in this_chat
    assert chat.conversation.spend.usage.web_searches == 2
    assert chat.conversation.spend.cost == pytest.approx(2 * turn_stats(reply.exchange, prices).cost)


async def test_an_answer_with_no_search_says_nothing_of_searches():
    reply = await Chat().send("hello")
    prices = PriceTable.load()
    assert "search" not in usage_box(turn_stats(reply.exchange, prices), None, prices).metadata["log"]  # type: ignore[index]


# --- the offline model's scripted search ---------------------------------------------------------


async def test_offline_a_question_about_today_streams_a_search_its_sources_and_cited_text():
    reply, _ = await offline_reply(offline_service(), NEWS)
    content = reply.exchange.content
    assert [block["type"] for block in content] == [
        "text",
        "server_tool_use",
        "web_search_tool_result",
        *["text"] * 5,
    ]
    assert content[1]["name"] == "web_search" and content[1]["input"] == {"query": "latest news today"}
    pages = content[2]["content"]
    assert 2 <= len(pages) <= 3 and all(page["url"].startswith("https://example.") for page in pages)
    cited = [c for block in content if block["type"] == "text" for c in block.get("citations", ())]
    assert [c["type"] for c in cited] == ["web_search_result_location"] * 2
    assert {c["url"] for c in cited} <= {page["url"] for page in pages}
    assert all(c["cited_text"] and c["encrypted_index"] and c["title"] for c in cited)
    assert reply.exchange.usage["server_tool_use"]["web_search_requests"] == 1  # type: ignore[index]


async def test_offline_the_search_answer_says_it_is_the_demo_and_its_sources_are_examples():
    reply, _ = await offline_reply(offline_service(), NEWS)
    assert "offline demo model" in reply.text and "made-up examples" in reply.text


async def test_offline_the_search_happens_with_the_web_search_toggle_on_or_off():
    service = offline_service()
    for options in (OFF, SEARCH):
        reply, _ = await offline_reply(service, "search for cats", options)
        assert reply.exchange.content[1]["input"] == {"query": "cats"}


async def test_offline_a_message_without_the_words_gets_the_plain_answer():
    reply, _ = await offline_reply(offline_service(), "Do some research on todays weather")
    assert [block["type"] for block in reply.exchange.content] == ["text"]


async def test_offline_the_next_turn_after_a_search_with_the_toggle_off_is_a_valid_history():
    service = offline_service()
    _, conversation = await offline_reply(service, NEWS)
    sent = service.request(conversation, OFF, Prompt("thanks"))
    assert [block["type"] for block in sent["messages"][1]["content"]] == ["text"]
    assert_valid_history(sent["messages"])


def test_offline_the_search_pauses_before_its_results_so_the_search_box_shows():
    stream = Stream.of(offline_message({"messages": [{"role": "user", "content": NEWS}]}, delay=0.05))
    ((number, hold),) = stream.holds.items()
    assert b'"web_search_tool_result"' in stream.events[number]
    assert b"content_block_start" in stream.events[number]
    assert hold == pytest.approx(20 * 0.05)


async def test_offline_a_search_still_streaming_shows_the_searching_box():
    service = offline_service()
    conversation = service.conversation()
    async with service.stream_reply(conversation, NEWS) as live:
        async for delta in live:
            if delta == BlockDelta(1, "stop"):  # the search call is in, its results not yet
                break
        titles = [
            (m.metadata or {}).get("title")
            for m in exchange_messages(shown(live.exchange, live.content, live.timings))
        ]
    assert "Searching the web: latest news today" in titles


# --- the wire format, against the recorded stream ------------------------------------------------


def shape(events: list[bytes]) -> list[tuple]:
    """Each search-related event's type, block type and keys: what the wire format fixes."""
    shapes = []
    for event in events:
        data = json.loads(event.split(b"data: ", 1)[1])
        block = data.get("content_block") or {}
        delta = data.get("delta") or {}
        if block.get("type") in ("server_tool_use", "web_search_tool_result"):
            items = block.get("content") or [{}]
            shapes.append((block["type"], tuple(sorted(block)), tuple(sorted(items[0]))))
        elif delta.get("type") in ("input_json_delta", "citations_delta"):
            shapes.append((delta["type"], tuple(sorted(delta)), tuple(sorted(delta.get("citation", {})))))
        elif data["type"] == "message_delta":
            shapes.append(("message_delta", tuple(sorted(data["usage"].get("server_tool_use", {})))))
    return list(dict.fromkeys(shapes))


def test_the_scripted_search_has_the_recorded_streams_wire_format():
    scripted = list(message_events(offline_message({"messages": [{"role": "user", "content": NEWS}]})))
    recorded_events = recorded(FIXTURES / "web_search.sse")
    expected = shape(recorded_events)
    actual = [s for s in shape(scripted) if s[0] != "message_delta"]
    assert actual == [s for s in expected if s[0] != "message_delta"]
    assert ("message_delta", ("web_search_requests",)) in expected
    assert "web_search_requests" in shape(scripted)[-1][1]


def test_the_offline_search_query_leaves_out_the_request_to_search():
    assert search_query("Search the web: what is the latest news in AI today?") == "latest news in ai today"
    assert search_query("please search for sqlite releases") == "sqlite releases"
    assert search_query("How do I search a list in Python?") == "do i search list in python"
