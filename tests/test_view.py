"""What a reply shows: the thinking box, the answer, and its receipt (stopped, cut off, usage)."""

from __future__ import annotations

from chat import ChatSession, ThinkingDelta
from chat.options import TurnOptions
from chat.usage import estimate_tokens
from chat.view import STOPPED_TITLE, THINKING_TITLE, USAGE_TITLE, unmarked_stopped_turn
from chat.wire import ScriptedMessage, TextBlock, ThinkingBlock
from tests.conftest import sdk_client_streaming

THINKING_THEN_TEXT = ScriptedMessage(
    [ThinkingBlock(["Two ", "and two."], signature="sig-a"), TextBlock(["Four", "."])], input_tokens=20
)


def notes_by_title(view) -> dict:
    return {box.title: box for box in view.notes}


async def test_thinking_box_is_pending_while_thinking_then_done_with_a_duration(settings):
    session = ChatSession(sdk_client_streaming(THINKING_THEN_TEXT), settings)
    seen = []
    async with session.stream_reply("2+2?") as reply:
        async for delta in reply:
            seen.append((type(delta), session.view(reply)))
    thinking_views = [view for kind, view in seen if kind is ThinkingDelta]
    assert [v.thinking.status for v in thinking_views] == ["pending", "pending"]
    assert thinking_views[-1].answer == ""
    final = session.view(reply)
    assert final.thinking.title == THINKING_TITLE and final.thinking.body == "Two and two."
    assert final.thinking.status == "done" and final.thinking.duration >= 0
    assert final.answer == "Four."


async def test_a_reply_without_thinking_has_no_thinking_box(settings):
    session = ChatSession(sdk_client_streaming(ScriptedMessage([TextBlock(["Hi"])])), settings)
    async with session.stream_reply("hello") as reply:
        await reply.collect()
    assert session.view(reply).thinking is None


async def test_a_complete_answer_ends_with_a_collapsed_usage_line_and_no_other_note(settings):
    message = ScriptedMessage(
        [TextBlock(["a b c"])], input_tokens=30, usage_extra={"cache_read_input_tokens": 900}
    )
    session = ChatSession(sdk_client_streaming(message), settings)
    async with session.stream_reply("hi") as reply:
        await reply.collect()
    notes = notes_by_title(session.view(reply))
    assert list(notes) == [USAGE_TITLE]
    usage = notes[USAGE_TITLE]
    assert usage.status == "done"
    assert "30 in · 3 out · 900 cache read" in usage.log and "$" in usage.log
    assert "to first token" in usage.log and "tokens/s" in usage.log
    assert "This chat so far" in usage.body and "1 answer" in usage.body


async def test_live_views_carry_no_receipt_until_the_reply_ends(settings):
    session = ChatSession(sdk_client_streaming(THINKING_THEN_TEXT), settings)
    async with session.stream_reply("2+2?") as reply:
        live = [session.view(reply).notes async for _ in reply]
    assert all(notes == () for notes in live)


async def test_a_stopped_answer_is_marked_stopped_with_the_tokens_received(settings):
    words = [f"word{i} " for i in range(50)]
    session = ChatSession(sdk_client_streaming(ScriptedMessage([TextBlock(words)])), settings)
    async with session.stream_reply("count") as reply:
        async for _ in reply:
            if reply.text.count("word") == 10:
                break
    view = session.view(reply)
    stopped = notes_by_title(view)["Stopped"]
    assert view.answer == "".join(words[:10])
    assert stopped.log == f"≈ {estimate_tokens(view.answer)} tokens received"
    assert notes_by_title(view)[USAGE_TITLE].log.startswith("≈ ")


async def test_stopping_while_thinking_closes_the_thinking_box_as_stopped(settings):
    message = ScriptedMessage([ThinkingBlock(["a ", "b ", "c "]), TextBlock(["never"])])
    session = ChatSession(sdk_client_streaming(message), settings)
    async with session.stream_reply("think") as reply:
        async for _ in reply:
            break
    thinking = session.view(reply).thinking
    assert (thinking.status, thinking.log) == ("done", "stopped")


async def test_an_answer_cut_off_at_max_tokens_says_how_to_get_more(settings):
    message = ScriptedMessage([TextBlock(["Once upon a"])], stop_reason="max_tokens")
    session = ChatSession(sdk_client_streaming(message), settings)
    async with session.stream_reply("story") as reply:
        await reply.collect()
    cut = notes_by_title(session.view(reply))["Cut off at max tokens"]
    assert cut.status is None  # left open, so the advice shows
    assert "256" in cut.log and "continue" in cut.body and "Max tokens" in cut.body


async def test_an_answer_cut_off_by_the_context_window_says_what_to_do(settings):
    message = ScriptedMessage([TextBlock(["Long"])], stop_reason="model_context_window_exceeded")
    session = ChatSession(sdk_client_streaming(message), settings)
    async with session.stream_reply("more") as reply:
        await reply.collect()
    cut = notes_by_title(session.view(reply))["Cut off: context window full"]
    assert "clear the chat" in cut.body


async def test_an_unpriced_model_shows_tokens_but_says_its_cost_is_unknown(settings):
    message = ScriptedMessage([TextBlock(["ok"])], model="claude-unknown-9")
    session = ChatSession(sdk_client_streaming(message), settings)
    async with session.stream_reply(
        "hi", options=TurnOptions(model="claude-unknown-9", max_tokens=64)
    ) as reply:
        await reply.collect()
    assert "cost unknown" in notes_by_title(session.view(reply))[USAGE_TITLE].log


async def stopped_reply(settings, words: int = 10) -> tuple[ChatSession, object]:
    session = ChatSession(
        sdk_client_streaming(ScriptedMessage([TextBlock([f"w{i} " for i in range(50)])])), settings
    )
    async with session.stream_reply("count") as reply:
        async for _ in reply:
            if reply.text.count("w") == words:
                break
    return session, reply


def screen(*messages: tuple[str, str]) -> list[dict]:
    return [{"role": role, "content": [{"type": "text", "text": text}]} for role, text in messages]


async def test_the_stopped_turn_shown_last_is_found_for_its_receipt(settings):
    _, reply = await stopped_reply(settings)
    shown = screen(("user", "hi"), ("assistant", "hello"), ("user", "count"), ("assistant", "w0 w1 w2"))
    assert unmarked_stopped_turn(shown, reply) == 2


async def test_a_stopped_turn_already_marked_is_left_alone(settings):
    _, reply = await stopped_reply(settings)
    shown = screen(("user", "count"), ("assistant", reply.text))
    shown.append({"role": "assistant", "content": "", "metadata": {"title": STOPPED_TITLE}})
    assert unmarked_stopped_turn(shown, reply) is None


async def test_no_receipt_goes_on_a_turn_that_is_not_the_stopped_reply(settings):
    _, reply = await stopped_reply(settings)
    assert unmarked_stopped_turn(screen(("user", "something else"), ("assistant", "w0")), reply) is None
    assert unmarked_stopped_turn(screen(("user", "count"), ("assistant", "other words")), reply) is None
    assert unmarked_stopped_turn([], reply) is None


async def test_a_complete_reply_needs_no_stop_receipt(settings):
    session = ChatSession(sdk_client_streaming(ScriptedMessage([TextBlock(["done"])])), settings)
    async with session.stream_reply("count") as reply:
        await reply.collect()
    assert unmarked_stopped_turn(screen(("user", "count"), ("assistant", "done")), reply) is None


async def test_waiting_for_a_reply_to_end_gives_up_after_the_timeout(settings):
    session = ChatSession(sdk_client_streaming(ScriptedMessage([TextBlock(["x"])])), settings)
    reply = session.stream_reply("never iterated")
    assert await reply.wait_until_ended(0.01) is False
    await reply.aclose()
    assert await reply.wait_until_ended(0.01) is True
