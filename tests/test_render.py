"""What an exchange shows (ui/render.py): every block in order, its sources, and its receipt.

Exchanges come from replies run through the `Chat` harness (the real SDK over scripted or
recorded wire traffic), never from hand-made dicts.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from chat import BlockDelta, Reply, Status, ThinkingDelta
from chat.context import ContextUse
from chat.errors import ChatError, ErrorKind
from chat.offline import OFFLINE_MODEL
from chat.options import TurnOptions
from chat.store import INTERRUPTED_MESSAGE, Store
from chat.usage import estimate_tokens
from chat.wire import ScriptedMessage, Stream, TextBlock, ThinkingBlock
from tests.conftest import Chat
from tests.upstream import fixture, text_reply
from ui.render import (
    FAILURE_CLASS,
    INTERRUPTED_TITLE,
    NOTICE_TITLE,
    OFFLINE_COST,
    REDACTED_TITLE,
    SOURCES_TITLE,
    STOPPED_TITLE,
    THINKING_TITLE,
    USAGE_TITLE,
    context_meter,
    exchange_messages,
    notice_message,
    notice_text,
    short_count,
    shown,
)
from ui.wording import say

THINKING_THEN_TEXT = ScriptedMessage(
    [ThinkingBlock(["Two ", "and two."], signature="sig-a"), TextBlock(["Four", "."])], input_tokens=20
)
WEATHER_PAGE = "https://world-weather.info/forecast/usa/new_york/may-2025/"
ACCUWEATHER = "https://www.accuweather.com/en/us/new-york/10021/weather-forecast/349727"


def scripted(*blocks: TextBlock | ThinkingBlock, delay: float = 0.0, **message: Any) -> Stream:
    return Stream.of(ScriptedMessage(list(blocks), **message), delay=delay)


def title_of(message: gr.ChatMessage | dict[str, Any]) -> str | None:
    metadata = message.metadata if isinstance(message, gr.ChatMessage) else message.get("metadata")
    return (metadata or {}).get("title")


def titled(messages: list[gr.ChatMessage]) -> dict[str, gr.ChatMessage]:
    return {title_of(m): m for m in messages if title_of(m)}


def answer_of(messages: list[gr.ChatMessage]) -> str:
    return "\n\n".join(m.content for m in messages if not title_of(m))


def live(reply: Reply) -> list[gr.ChatMessage]:
    """The reply as the page draws it while it streams."""
    return exchange_messages(shown(reply.exchange, reply.content, reply.timings))


def ended(chat: Chat, reply: Reply) -> list[gr.ChatMessage]:
    """The ended reply as the page draws it, with its receipt."""
    return exchange_messages(shown(reply.exchange), chat.service.prices, chat.conversation.spend)


async def answered(stream: Stream, text: str = "q", **options: Any) -> list[gr.ChatMessage]:
    chat = Chat(stream)
    reply = await chat.send(text, options=TurnOptions(**options) if options else None)
    return ended(chat, reply)


async def test_thinking_box_is_pending_while_thinking_then_done_with_a_duration():
    chat = Chat(Stream.of(THINKING_THEN_TEXT))
    seen = []
    async with chat.stream("2+2?") as reply:
        async for delta in reply:
            seen.append((type(delta), live(reply)))
    thinking_views = [view for kind, view in seen if kind is ThinkingDelta]
    assert [titled(v)[THINKING_TITLE].metadata["status"] for v in thinking_views] == ["pending", "pending"]
    assert answer_of(thinking_views[-1]) == ""
    final = ended(chat, reply)
    thinking = titled(final)[THINKING_TITLE]
    assert thinking.content == "Two and two."
    assert thinking.metadata["status"] == "done" and thinking.metadata["duration"] >= 0
    assert answer_of(final) == "Four."


async def test_a_reply_without_thinking_has_no_thinking_box():
    assert THINKING_TITLE not in titled(await answered(text_reply("Hi")))


async def test_a_complete_answer_ends_with_a_collapsed_usage_line_and_no_other_note():
    paced = scripted(  # paced, so the speed has a span to be measured over
        TextBlock(["a ", "b ", "c"]),
        input_tokens=30,
        usage_extra={"cache_read_input_tokens": 900},
        delay=0.01,
    )
    messages = await answered(paced)
    notes = titled(messages)
    assert list(notes) == [USAGE_TITLE]
    usage = notes[USAGE_TITLE].metadata
    assert usage["status"] == "done"
    assert "30 in · 3 out · 900 cache read" in usage["log"] and "$" in usage["log"]
    assert "to first token" in usage["log"] and "tokens/s" in usage["log"]
    body = notes[USAGE_TITLE].content
    assert "This chat so far" in body and "1 answer" in body


async def metered(used: int, window: int, *, latest: bool = True) -> list[gr.ChatMessage]:
    chat = Chat(text_reply("Hi"))
    reply = await chat.send("q")
    spend, context = chat.conversation.spend, ContextUse(used, window)
    return exchange_messages(
        shown(reply.exchange), chat.service.prices, spend, context=context, latest=latest
    )


async def test_the_receipt_says_how_full_the_context_window_is():
    notes = titled(await metered(12_345, 200_000))
    assert "Context: 12.3k of 200k tokens" in notes[USAGE_TITLE].metadata["log"]
    assert "Context: 12.3k of 200k tokens (6% of the model's context window)" in notes[USAGE_TITLE].content
    assert list(notes) == [USAGE_TITLE]  # far from full: no warning


async def test_from_eighty_percent_a_warning_says_to_start_a_new_chat_or_undo():
    messages = await metered(850_000, 1_000_000)
    warning = messages[-1]
    assert title_of(warning) == "\u26a0\ufe0f Context 85% full" and "status" not in warning.metadata
    assert "850k of the model's 1M-token context window" in warning.content
    assert "Start a new chat (or undo earlier turns)" in warning.content


async def test_the_warning_is_under_the_latest_answer_only_not_every_earlier_one():
    earlier = titled(await metered(850_000, 1_000_000, latest=False))
    assert list(earlier) == [USAGE_TITLE]
    assert "Context: 850k of 1M tokens" in earlier[USAGE_TITLE].metadata["log"]


async def test_just_under_eighty_percent_there_is_no_warning():
    assert list(titled(await metered(799_999, 1_000_000))) == [USAGE_TITLE]


def test_token_counts_read_as_people_say_them():
    assert [short_count(n) for n in (950, 12_345, 200_000, 999_949, 1_000_000, 1_234_567)] == [
        "950",
        "12.3k",
        "200k",
        "999.9k",
        "1M",
        "1.2M",
    ]


async def test_live_views_carry_no_receipt_until_the_reply_ends():
    chat = Chat(Stream.of(THINKING_THEN_TEXT))
    async with chat.stream("2+2?") as reply:
        views = [live(reply) async for _ in reply]
    assert views and all(set(titled(view)) <= {THINKING_TITLE} for view in views)


async def test_a_stopped_answer_is_marked_stopped_with_the_tokens_received():
    words = [f"word{i} " for i in range(50)]
    chat = Chat(scripted(TextBlock(words)))
    async with chat.stream("count") as reply:
        async for _ in reply:
            if reply.text.count("word") == 10:
                break
    messages = ended(chat, reply)
    stopped = titled(messages)[STOPPED_TITLE]
    assert answer_of(messages) == "".join(words[:10])
    assert stopped.metadata["log"] == f"≈ {estimate_tokens(answer_of(messages))} tokens received"
    assert titled(messages)[USAGE_TITLE].metadata["log"].startswith("≈ ")


async def test_an_answer_a_restart_interrupted_shows_what_arrived_and_says_the_app_restarted(tmp_path):
    chat = Chat(scripted(TextBlock([f"word{i} " for i in range(50)])))
    async with chat.stream("count") as reply:
        async for _ in reply:
            if reply.text.count("word") == 10:
                break
    store = await Store.open(f"sqlite:///{tmp_path / 'chats.db'}")
    made = await store.create("ann", "count")
    arrived = reply.text
    streaming = chat.conversation.exchanges[0]
    streaming.status = Status.STREAMING  # as saved mid-answer, just before the app went down
    await store.save("ann", made.id, 0, streaming)
    await store.close()
    reopened = await Store.open(f"sqlite:///{tmp_path / 'chats.db'}")  # the restart
    (interrupted,) = await reopened.exchanges("ann", made.id)
    await reopened.close()
    messages = exchange_messages(shown(interrupted))
    assert answer_of(messages) == arrived
    assert STOPPED_TITLE not in titled(messages)  # nobody pressed Stop
    assert titled(messages)[INTERRUPTED_TITLE].content.startswith(INTERRUPTED_MESSAGE)


async def test_stopping_while_thinking_closes_the_thinking_box_as_stopped():
    chat = Chat(scripted(ThinkingBlock(["a ", "b ", "c "]), TextBlock(["never"])))
    async with chat.stream("think") as reply:
        async for _ in reply:
            break
    thinking = titled(ended(chat, reply))[THINKING_TITLE].metadata
    assert (thinking["status"], thinking["log"]) == ("done", "stopped")


async def test_an_answer_cut_off_at_max_tokens_says_how_to_get_more():
    messages = await answered(scripted(TextBlock(["Once upon a"]), stop_reason="max_tokens"), "story")
    cut = titled(messages)["Cut off at max tokens"]
    assert "status" not in cut.metadata  # left open, so the advice shows
    assert "256" in cut.metadata["log"] and "continue" in cut.content and "Max tokens" in cut.content


async def test_an_answer_cut_off_by_the_context_window_says_what_to_do():
    stream = scripted(TextBlock(["Long"]), stop_reason="model_context_window_exceeded")
    cut = titled(await answered(stream, "more"))["Cut off: context window full"]
    assert "clear the chat" in cut.content


async def test_an_answer_paused_by_the_api_mid_search_says_to_send_continue():
    paused = titled(await answered(scripted(TextBlock(["Searching"]), stop_reason="pause_turn"), "news"))
    assert "status" not in paused["Paused mid-answer"].metadata  # left open, so the advice shows
    assert "\u201ccontinue\u201d" in paused["Paused mid-answer"].content


async def test_an_unpriced_model_shows_tokens_but_says_its_cost_is_unknown():
    stream = scripted(TextBlock(["ok"]), model="claude-unknown-9")
    messages = await answered(stream, "hi", model="claude-unknown-9", max_tokens=64)
    log = titled(messages)[USAGE_TITLE].metadata["log"]
    assert "cost unknown" in log and "1 out" in log


async def test_an_offline_receipt_counts_tokens_and_says_it_costs_nothing():
    chat = Chat(scripted(TextBlock(["canned"]), input_tokens=12, model=OFFLINE_MODEL))
    reply = await chat.send("q")
    messages = exchange_messages(shown(reply.exchange), chat.service.prices, chat.conversation.spend)
    usage = titled(messages)[USAGE_TITLE]
    assert "12 in · 1 out" in usage.metadata["log"] and OFFLINE_COST in usage.metadata["log"]
    assert "$" not in usage.metadata["log"] and "$" not in usage.content


def test_a_failure_notice_is_marked_as_a_failure_and_says_only_its_message():
    notice = notice_message(ChatError(ErrorKind.API_BUSY, "Claude is busy."))
    assert notice.metadata["title"] == NOTICE_TITLE
    assert f'class="{FAILURE_CLASS}"' in notice.content
    assert notice_text(notice.content) == say(ChatError(ErrorKind.API_BUSY, "Claude is busy."))


async def test_separate_text_blocks_get_a_paragraph_break_never_glued():
    messages = await answered(scripted(TextBlock(["First paragraph."]), TextBlock(["Second paragraph."])))
    assert answer_of(messages) == "First paragraph.\n\nSecond paragraph."


async def test_cited_blocks_join_mid_sentence_with_numbered_markers_linking_to_the_cited_page():
    answer = answer_of(await answered(fixture("web_search.sse")))
    assert (
        f"a low around 55°F [[1]]({WEATHER_PAGE}), and there is a 40% chance of showers this afternoon "
        f"[[2]]({ACCUWEATHER}). If you're heading out, an umbrella would be a good idea."
    ) in answer


async def test_a_sources_box_lists_the_cited_pages_with_their_cited_text():
    sources = titled(await answered(fixture("web_search.sse")))[SOURCES_TITLE]
    assert sources.metadata["log"] == "2 cited"
    assert sources.content == (
        "1. [Weather in New York City in May 2025 (New York) - detailed Weather Forecast for a month]"
        f"({WEATHER_PAGE})\n   > Tuesday, 20 May. Day +68°F, night +55°F. Mostly cloudy.\n"
        f"2. [New York, NY Weather Forecast | AccuWeather]({ACCUWEATHER})\n"
        "   > Mostly cloudy with a couple of afternoon showers; chance of rain 40%."
    )


async def test_a_tool_call_shows_the_lead_in_text_and_a_box_with_its_input():
    messages = await answered(fixture("tool_use.sse"))
    assert [title_of(m) for m in messages] == [
        None,
        "Tool call: get_weather",
        "Claude asked for a tool",
        USAGE_TITLE,
    ]
    assert messages[0].content == "Okay, let's check the weather for San Francisco, CA:"
    call = titled(messages)["Tool call: get_weather"]
    assert '"location": "San Francisco, CA"' in call.content and '"unit": "fahrenheit"' in call.content
    assert call.metadata["log"] == "not run"


async def test_a_web_search_shows_what_was_searched_for():
    search = titled(await answered(fixture("web_search.sse")))["Searched the web: weather NYC today"]
    assert search.metadata["status"] == "done"


async def test_a_web_search_still_streaming_shows_as_pending():
    chat = Chat(fixture("web_search.sse"))
    async with chat.stream("weather in NYC?") as reply:
        async for delta in reply:
            if delta == BlockDelta(1, "stop"):  # the server_tool_use block is in, its results not yet
                view = live(reply)
                break
    searching = titled(view)["Searching the web: weather NYC today"]
    assert searching.metadata["status"] == "pending"
    assert "Searched the web: weather NYC today" not in titled(view)


async def test_a_web_search_result_lists_each_page_found_with_its_title_and_link():
    found = titled(await answered(fixture("web_search.sse")))["Found 3 sources"]
    assert found.content.splitlines() == [
        f"- [Weather in New York City in May 2025 (New York) - detailed Weather Forecast for a month]"
        f"({WEATHER_PAGE})",
        f"- [New York, NY Weather Forecast | AccuWeather]({ACCUWEATHER}) (May 20, 2025)",
        "- [National Weather Service - New York, NY](https://forecast.weather.gov/MapClick.php?lat=40.7142&lon=-74.0059)",
    ]


async def test_redacted_thinking_shows_a_short_redacted_box():
    messages = await answered(fixture("redacted_thinking.sse"))
    assert [title_of(m) for m in messages][:3] == [THINKING_TITLE, REDACTED_TITLE, None]
    redacted = titled(messages)[REDACTED_TITLE]
    assert "redacted" in REDACTED_TITLE and len(redacted.content) < 120
    assert "EmwKAhgB" not in redacted.content  # the encrypted data is never shown
    assert answer_of(messages) == "Based on my analysis..."


async def test_an_unknown_block_gets_a_box_naming_its_type():
    messages = await answered(fixture("unknown_block.sse"))
    unknown = titled(messages)["Unsupported block: future_widget"]
    assert "`future_widget`" in unknown.content and unknown.metadata["status"] == "done"
    assert answer_of(messages) == "Here is a widget:"


async def test_waiting_for_a_reply_to_end_gives_up_after_the_timeout():
    reply = Chat(text_reply("x")).stream("never iterated")
    assert await reply.wait_until_ended(0.01) is False
    await reply.aclose()
    assert await reply.wait_until_ended(0.01) is True


def test_the_page_meter_marks_a_nearly_full_context():
    assert context_meter(ContextUse(12_345, 200_000)) == "Context: 12.3k of 200k tokens"
    assert (
        context_meter(ContextUse(850_000, 1_000_000))
        == "\u26a0\ufe0f **Context: 850k of 1M tokens** (85% full)"
    )
