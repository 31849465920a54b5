"""The chat service over the real SDK and a scripted upstream: streaming, history, stop and failure."""

from __future__ import annotations

import pytest

from chat import ChatError, ErrorKind, Status, TextDelta
from tests.conftest import Chat, make_settings, write_image, write_pdf
from tests.upstream import TEST_KEY, Stream, cut_mid_stream, text_events, text_reply
from ui.gradio_fixes import exchanges_on_screen


async def drain(chat: Chat, message: str) -> list[str]:
    async with chat.stream(message) as reply:
        return [delta.text async for delta in reply if isinstance(delta, TextDelta)]


def cut_before_any_text() -> Stream:
    """A stream whose connection is reset right after message_start: no answer text arrives."""
    return Stream(text_events("never sent"), hang_up_after=1, hang_up="reset")


async def test_deltas_arrive_in_order():
    chat = Chat(text_reply("Hel", "lo, ", "world"))
    assert await drain(chat, "hi") == ["Hel", "lo, ", "world"]


async def test_final_message_equals_joined_deltas():
    chat = Chat(text_reply("one ", "two ", "three"))
    async with chat.stream("count") as reply:
        deltas = [delta.text async for delta in reply]
    assert reply.status is Status.COMPLETE
    assert reply.message is not None
    assert reply.message.content[0].text == "".join(deltas) == reply.text


async def test_complete_reply_adds_one_user_and_one_assistant_turn():
    chat = Chat(text_reply("Paris."))
    await drain(chat, "Capital of France?")
    assert chat.messages == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Paris."}]},
    ]


async def test_second_request_carries_the_first_turn():
    chat = Chat(text_reply("Paris."), text_reply("Berlin."))
    await drain(chat, "France?")
    await drain(chat, "Germany?")
    sent = chat.requests[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "France?" and sent[2]["content"] == "Germany?"


async def test_request_uses_model_max_tokens_and_system_prompt():
    settings = make_settings(
        api_key=TEST_KEY, model="claude-haiku-5-5", max_tokens=99, system_prompt="Be brief."
    )
    chat = Chat(text_reply("ok"), settings=settings)
    await drain(chat, "hi")
    assert chat.requests[0]["model"] == "claude-haiku-5-5"
    assert chat.requests[0]["max_tokens"] == 99
    assert chat.requests[0]["system"] == "Be brief."


async def test_no_system_prompt_is_sent_when_none_is_set():
    chat = Chat(text_reply("ok"))
    await drain(chat, "hi")
    assert "system" not in chat.requests[0]


async def test_blank_message_is_refused_before_anything_is_sent():
    chat = Chat()
    with pytest.raises(ChatError, match=r"blank"):
        chat.stream("   \n\t")
    assert chat.requests == []


async def test_stopping_keeps_the_partial_text_as_the_answer():
    chat = Chat(text_reply("The first ", "half", " never sent"))
    async with chat.stream("tell me") as reply:
        async for _delta in reply:
            if reply.text == "The first half":
                break
    assert reply.status is Status.STOPPED
    assert chat.messages[-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "The first half"}],
    }


async def test_stopping_closes_the_upstream_stream():
    chat = Chat(text_reply("a", "b", "c"))
    async with chat.stream("go") as reply:
        async for _ in reply:
            break
    assert chat.upstream.calls[0].client_left_at is not None


async def test_stop_before_any_text_keeps_history_valid():
    chat = Chat(text_reply("never", thinking="Hmm"), text_reply("second answer"))
    async with chat.stream("first") as reply:
        async for _ in reply:
            break  # stopped while Claude was still thinking: no answer text yet
    await drain(chat, "second")
    assert [m["role"] for m in chat.requests[1]["messages"]] == ["user"]
    assert chat.requests[1]["messages"][0]["content"] == "second"


async def test_failure_mid_stream_raises_chat_error_and_keeps_partial_text():
    chat = Chat(cut_mid_stream("Half an "))
    with pytest.raises(ChatError) as raised:
        await drain(chat, "question")
    assert raised.value.kind is ErrorKind.INTERRUPTED
    assert "scripted upstream" not in raised.value.message  # the transport's own words stay in the log
    assert chat.messages[-1]["content"] == [{"type": "text", "text": "Half an "}]


async def test_next_turn_after_a_failure_sends_alternating_roles():
    chat = Chat(cut_before_any_text(), text_reply("fine"))
    with pytest.raises(ChatError):
        await drain(chat, "first")
    await drain(chat, "second")
    assert [m["content"] for m in chat.requests[1]["messages"]] == ["second"]


async def test_thinking_blocks_stay_in_history_with_signature():
    chat = Chat(text_reply("42", thinking="Let me think."))
    await drain(chat, "answer?")
    assert chat.messages[-1]["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
        {"type": "text", "text": "42"},
    ]


async def test_keep_holds_on_to_the_exchanges_the_screen_still_shows():
    chat = Chat(text_reply("42", thinking="Hmm."), text_reply("ok"))
    await drain(chat, "answer?")
    shown = [
        {"role": "user", "content": [{"type": "text", "text": "answer?"}]},
        {"role": "assistant", "content": "Thinking...", "metadata": {"title": "Thinking"}},
        {"role": "assistant", "content": [{"type": "text", "text": "42"}]},
    ]
    chat.conversation.keep(exchanges_on_screen(shown))
    await drain(chat, "next")
    assert chat.requests[1]["messages"] == [
        {"role": "user", "content": "answer?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
                {"type": "text", "text": "42"},
            ],
        },
        {"role": "user", "content": "next"},
    ]


async def test_keep_after_retry_drops_the_retried_exchange():
    chat = Chat(text_reply("A1"), text_reply("A2"), text_reply("A2 again"))
    await drain(chat, "Q1")
    await drain(chat, "Q2")
    chat.conversation.keep(1)
    await drain(chat, "Q2")
    assert chat.requests[2]["messages"] == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": [{"type": "text", "text": "A1"}]},
        {"role": "user", "content": "Q2"},
    ]


async def test_keep_before_an_edited_message_sends_the_edited_text_alone():
    chat = Chat(text_reply("A1"), text_reply("A1 edited"))
    await drain(chat, "Q1")
    chat.conversation.keep(0)
    await drain(chat, "Q1 edited")
    assert chat.requests[1]["messages"] == [{"role": "user", "content": "Q1 edited"}]


async def test_conversations_share_the_service_but_not_exchanges():
    chat = Chat(text_reply("A1"), text_reply("B1", "B2"))
    first, second = chat.conversation, chat.service.conversation()
    async with chat.service.stream_reply(first, "only in the first tab") as one:
        await anext(aiter(one))
        async with chat.service.stream_reply(second, "the second tab") as two:
            await anext(aiter(two))
            assert chat.service.slots.in_use == 2  # both tabs stream under the service's one cap
            await two.collect()
        await one.collect()
    assert len(chat.upstream.requests) == 2  # one client carried both
    assert chat.requests[1]["messages"] == [{"role": "user", "content": "the second tab"}]
    assert [e.prompt.text for e in first.exchanges] == ["only in the first tab"]
    assert [e.prompt.text for e in second.exchanges] == ["the second tab"]


async def test_files_go_to_claude_before_the_text_of_the_message(tmp_path):
    chat = Chat(text_reply("A red square."))
    image, pdf = write_image(tmp_path / "red.png"), write_pdf(tmp_path / "spec.pdf")
    await chat.send("what are these?", [str(image), str(pdf)])
    content = chat.requests[0]["messages"][0]["content"]
    assert [block["type"] for block in content] == ["image", "document", "text"]
    assert content[2] == {"type": "text", "text": "what are these?"}


async def test_a_file_without_text_is_sent_on_its_own(tmp_path):
    chat = Chat(text_reply("A red square."))
    await chat.send("  ", [str(write_image(tmp_path / "red.png"))])
    assert [block["type"] for block in chat.requests[0]["messages"][0]["content"]] == ["image"]


async def test_a_bad_file_is_refused_before_anything_is_sent(tmp_path):
    chat = Chat()
    (tmp_path / "notes.txt").write_text("notes")
    with pytest.raises(ChatError, match=r"notes.txt is not a file Claude can read"):
        chat.stream("read this", [str(tmp_path / "notes.txt")])
    assert chat.requests == []


async def test_an_exchange_with_files_is_kept_when_the_screen_shows_it(tmp_path):
    chat = Chat(text_reply("Red."), text_reply("ok"))
    path = str(write_image(tmp_path / "red.png"))
    await chat.send("colour?", [path])
    recorded = chat.conversation.exchanges[0]
    shown = [
        {"role": "user", "content": [{"path": path}, "colour?"]},
        {"role": "assistant", "content": "Red."},
    ]
    chat.conversation.keep(exchanges_on_screen(shown))
    assert chat.conversation.exchanges == [recorded] and chat.conversation.exchanges[0] is recorded
    await chat.send("next")
    assert chat.requests[1]["messages"][0] == chat.requests[0]["messages"][0]
