"""The chat service against a scripted stand-in client: streaming, history, stop and failure."""

from __future__ import annotations

import copy

import pytest

from chat import ChatError, ChatSession, ReplyStatus, Settings, TextDelta
from tests.conftest import Scripted, ScriptedClient, write_image, write_pdf


async def drain(session: ChatSession, message: str) -> list[str]:
    async with session.stream_reply(message) as reply:
        return [delta.text async for delta in reply if isinstance(delta, TextDelta)]


async def test_deltas_arrive_in_order(settings):
    session = ChatSession(ScriptedClient(Scripted(["Hel", "lo, ", "world"])), settings)
    assert await drain(session, "hi") == ["Hel", "lo, ", "world"]


async def test_final_message_equals_joined_deltas(settings):
    session = ChatSession(ScriptedClient(Scripted(["one ", "two ", "three"])), settings)
    async with session.stream_reply("count") as reply:
        deltas = [delta.text async for delta in reply]
    assert reply.status is ReplyStatus.COMPLETE
    assert reply.message is not None
    assert reply.message.content[0].text == "".join(deltas) == reply.text


async def test_complete_reply_adds_one_user_and_one_assistant_turn(settings):
    session = ChatSession(ScriptedClient(Scripted(["Paris."])), settings)
    await drain(session, "Capital of France?")
    assert session.messages == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Paris."}]},
    ]


async def test_second_request_carries_the_first_turn(settings):
    client = ScriptedClient(Scripted(["Paris."]), Scripted(["Berlin."]))
    session = ChatSession(client, settings)
    await drain(session, "France?")
    await drain(session, "Germany?")
    sent = client.requests[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "France?" and sent[2]["content"] == "Germany?"


async def test_request_uses_model_max_tokens_and_system_prompt(settings):
    client = ScriptedClient(Scripted(["ok"]))
    session = ChatSession(
        client, Settings(model="claude-haiku-5-5", max_tokens=99, system_prompt="Be brief.")
    )
    await drain(session, "hi")
    assert client.requests[0]["model"] == "claude-haiku-5-5"
    assert client.requests[0]["max_tokens"] == 99
    assert client.requests[0]["system"] == "Be brief."


async def test_no_system_prompt_is_sent_when_none_is_set(settings):
    client = ScriptedClient(Scripted(["ok"]))
    await drain(ChatSession(client, settings), "hi")
    assert "system" not in client.requests[0]


async def test_blank_message_is_refused_before_anything_is_sent(settings):
    client = ScriptedClient()
    with pytest.raises(ChatError, match=r"blank"):
        ChatSession(client, settings).stream_reply("   \n\t")
    assert client.requests == []


async def test_stopping_keeps_the_partial_text_as_the_answer(settings):
    client = ScriptedClient(Scripted(["The first ", "half", " never sent"]))
    session = ChatSession(client, settings)
    async with session.stream_reply("tell me") as reply:
        async for _delta in reply:
            if reply.text == "The first half":
                break
    assert reply.status is ReplyStatus.STOPPED
    assert session.messages[-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "The first half"}],
    }


async def test_stopping_closes_the_upstream_stream(settings):
    client = ScriptedClient(Scripted(["a", "b", "c"]))
    session = ChatSession(client, settings)
    async with session.stream_reply("go") as reply:
        async for _ in reply:
            break
    assert client.streams[0].closed


async def test_stop_before_any_text_keeps_history_valid(settings):
    client = ScriptedClient(Scripted(["never"], thinking="Hmm"), Scripted(["second answer"]))
    session = ChatSession(client, settings)
    async with session.stream_reply("first") as reply:
        async for _ in reply:
            break  # stopped while Claude was still thinking: no answer text yet
    await drain(session, "second")
    assert [m["role"] for m in client.requests[1]["messages"]] == ["user"]
    assert client.requests[1]["messages"][0]["content"] == "second"


async def test_failure_mid_stream_raises_chat_error_and_keeps_partial_text(settings):
    client = ScriptedClient(Scripted(["Half an "], fail_with=RuntimeError("socket exploded")))
    session = ChatSession(client, settings)
    with pytest.raises(ChatError) as raised:
        await drain(session, "question")
    assert "socket exploded" not in raised.value.message
    assert session.messages[-1]["content"] == [{"type": "text", "text": "Half an "}]


async def test_next_turn_after_a_failure_sends_alternating_roles(settings):
    client = ScriptedClient(Scripted([], fail_with=RuntimeError("boom")), Scripted(["fine"]))
    session = ChatSession(client, settings)
    with pytest.raises(ChatError):
        await drain(session, "first")
    await drain(session, "second")
    assert [m["content"] for m in client.requests[1]["messages"]] == ["second"]


async def test_thinking_blocks_stay_in_history_with_signature(settings):
    session = ChatSession(ScriptedClient(Scripted(["42"], thinking="Let me think.")), settings)
    await drain(session, "answer?")
    assert session.messages[-1]["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
        {"type": "text", "text": "42"},
    ]


async def test_sync_keeps_recorded_turns_the_screen_still_shows(settings):
    session = ChatSession(ScriptedClient(Scripted(["42"], thinking="Hmm.")), settings)
    await drain(session, "answer?")
    shown = [
        {"role": "user", "content": [{"type": "text", "text": "answer?"}]},
        {"role": "assistant", "content": "Thinking...", "metadata": {"title": "Thinking"}},
        {"role": "assistant", "content": [{"type": "text", "text": "42"}]},
    ]
    session.sync(shown)
    assert session.messages[-1]["content"][0]["type"] == "thinking"


async def test_sync_after_retry_drops_the_retried_turn(settings):
    client = ScriptedClient(Scripted(["A1"]), Scripted(["A2"]))
    session = ChatSession(client, settings)
    await drain(session, "Q1")
    await drain(session, "Q2")
    session.sync([{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}])
    assert [m["role"] for m in session.messages] == ["user", "assistant"]


async def test_sync_after_edit_rebuilds_the_edited_turn_from_the_screen(settings):
    session = ChatSession(ScriptedClient(Scripted(["A1"])), settings)
    await drain(session, "Q1")
    session.sync([{"role": "user", "content": "Q1 edited"}, {"role": "assistant", "content": "A1"}])
    assert session.messages[0] == {"role": "user", "content": "Q1 edited"}


async def test_copies_share_the_client_but_not_the_history(settings):
    client = ScriptedClient(Scripted(["A1"]))
    template = ChatSession(client, settings)
    first, second = copy.deepcopy(template), copy.deepcopy(template)
    await drain(first, "only in the first tab")
    assert first.client is second.client is client
    assert second.messages == []


async def test_files_go_to_claude_before_the_text_of_the_message(settings, tmp_path):
    client = ScriptedClient(Scripted(["A red square."]))
    image, pdf = write_image(tmp_path / "red.png"), write_pdf(tmp_path / "spec.pdf")
    await drain_with_files(ChatSession(client, settings), "what are these?", [str(image), str(pdf)])
    content = client.requests[0]["messages"][0]["content"]
    assert [block["type"] for block in content] == ["image", "document", "text"]
    assert content[2] == {"type": "text", "text": "what are these?"}


async def test_a_file_without_text_is_sent_on_its_own(settings, tmp_path):
    client = ScriptedClient(Scripted(["A red square."]))
    await drain_with_files(ChatSession(client, settings), "  ", [str(write_image(tmp_path / "red.png"))])
    assert [block["type"] for block in client.requests[0]["messages"][0]["content"]] == ["image"]


async def test_a_bad_file_is_refused_before_anything_is_sent(settings, tmp_path):
    client = ScriptedClient()
    (tmp_path / "notes.txt").write_text("notes")
    with pytest.raises(ChatError, match=r"notes.txt is not a file Claude can read"):
        ChatSession(client, settings).stream_reply("read this", [str(tmp_path / "notes.txt")])
    assert client.requests == []


async def test_a_turn_with_files_is_kept_when_the_screen_shows_it(settings, tmp_path):
    client = ScriptedClient(Scripted(["Red."]))
    session = ChatSession(client, settings)
    path = str(write_image(tmp_path / "red.png"))
    await drain_with_files(session, "colour?", [path])
    recorded = session.turns[0]
    session.sync(
        [{"role": "user", "content": [{"path": path}, "colour?"]}, {"role": "assistant", "content": "Red."}]
    )
    assert session.turns == [recorded] and session.turns[0] is recorded


async def drain_with_files(session: ChatSession, message: str, files: list[str]) -> str:
    async with session.stream_reply(message, files) as reply:
        return await reply.collect()
