"""Exporting a conversation as the Messages API payload and Markdown, and loading it back."""

from __future__ import annotations

import base64
import json

import pytest

from chat import ChatError, ChatSession, Settings
from chat.export import (
    conversation_json,
    conversation_markdown,
    conversation_payload,
    load_conversation,
    shown_messages,
)
from chat.history import reconcile, shown_pairs
from tests.conftest import Scripted, ScriptedClient, write_image, write_pdf

PNG_PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()


async def talked(session: ChatSession, message: str, files: list[str] = ()) -> None:
    async with session.stream_reply(message, files) as reply:
        await reply.collect()


@pytest.fixture
def session_with_files(tmp_path):
    client = ScriptedClient(Scripted(["Thought."], thinking="Hmm."), Scripted(["A red square."]))
    settings = Settings(api_key="sk-test-not-real", max_tokens=321, system_prompt="Be brief.")
    return ChatSession(client, settings), [
        str(write_image(tmp_path / "red.png")),
        str(write_pdf(tmp_path / "a.pdf")),
    ]


async def test_the_payload_is_the_last_request_with_its_answer_and_stream_on(session_with_files):
    session, files = session_with_files
    await talked(session, "hello")
    await talked(session, "what are these?", files)
    last_request = session.client.requests[-1]
    payload = conversation_payload(session)
    assert payload["messages"][:-1] == last_request["messages"]
    assert payload["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "A red square."}],
    }
    assert {k: v for k, v in payload.items() if k != "messages"} == {
        **{k: v for k, v in last_request.items() if k != "messages"},
        "stream": True,
    }
    assert payload["system"] == "Be brief." and payload["max_tokens"] == 321


async def test_the_payload_keeps_thinking_blocks_and_signatures(session_with_files):
    session, _ = session_with_files
    await talked(session, "hello")
    assert conversation_payload(session)["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Hmm.",
        "signature": "sig",
    }


async def test_markdown_shows_each_turn_with_its_files(session_with_files):
    session, files = session_with_files
    await talked(session, "hello")
    await talked(session, "what are these?", files)
    markdown = conversation_markdown(session)
    assert "## You\n\nhello\n\n## Claude\n\nThought." in markdown
    assert "*Attached: red.png, a.pdf*\n\nwhat are these?" in markdown
    assert "> Be brief." in markdown


async def test_loading_an_export_restores_every_message_exactly(session_with_files):
    session, files = session_with_files
    await talked(session, "hello")
    await talked(session, "what are these?", files)
    restored = ChatSession(ScriptedClient(), session.settings, load_conversation(conversation_json(session)))
    assert restored.messages == session.messages


async def test_a_loaded_conversation_shown_on_screen_is_kept_not_rebuilt(session_with_files, tmp_path):
    session, files = session_with_files
    await talked(session, "what are these?", files)
    turns = load_conversation(conversation_json(session))
    shown = shown_messages(turns, tmp_path / "shown")
    kept = reconcile(turns, shown_pairs(shown))
    assert all(a is b for a, b in zip(kept, turns, strict=True))
    assert [p.name for p in (tmp_path / "shown" / "turn-1").iterdir()] and shown[0]["content"][
        -1
    ] == "what are these?"


def test_a_document_keeps_its_title_as_its_name_on_screen(tmp_path):
    pdf = base64.b64encode(write_pdf(tmp_path / "x.pdf").read_bytes()).decode()
    document = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
    }
    [turn] = load_conversation(
        json.dumps({"messages": [{"role": "user", "content": [{**document, "title": "q3.pdf"}]}]})
    )
    assert turn.shown_files == ("q3.pdf",)


def test_a_trailing_user_message_loads_as_an_unanswered_turn():
    turns = load_conversation(json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    assert turns[0].assistant is None and turns[0].shown_user == "hi"


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
    ],
)
def test_a_bad_file_is_refused_with_what_is_wrong(data, message):
    with pytest.raises(ChatError, match=message):
        load_conversation(data, "export.json")
