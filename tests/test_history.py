"""Reading what the screen shows into turns, and the message list sent to Claude."""

from __future__ import annotations

import pytest

from chat import ChatError, ChatSession
from chat.history import ShownPair, Turn, messages_for, reconcile, shown_pairs
from tests.conftest import Scripted, ScriptedClient, write_image


def test_plain_string_history_becomes_pairs():
    shown = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    assert shown_pairs(shown) == [ShownPair("Q", "A")]


def test_web_page_history_with_text_parts_becomes_pairs():
    shown = [
        {"role": "user", "content": [{"type": "text", "text": "Q"}], "metadata": None, "options": None},
        {"role": "assistant", "content": [{"type": "text", "text": "A"}], "metadata": None},
    ]
    assert shown_pairs(shown) == [ShownPair("Q", "A")]


def test_display_only_boxes_are_not_part_of_the_answer():
    shown = [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "pondering", "metadata": {"title": "Thinking"}},
        {"role": "assistant", "content": "A"},
        {"role": "assistant", "content": "12 tokens", "metadata": {"title": "Usage"}},
    ]
    assert shown_pairs(shown) == [ShownPair("Q", "A")]


def test_a_user_message_without_answer_is_an_unanswered_pair():
    shown = [{"role": "user", "content": "failed"}, {"role": "user", "content": "next"}]
    assert shown_pairs(shown) == [ShownPair("failed", None), ShownPair("next", None)]


def test_unanswered_turns_are_not_sent_so_roles_alternate():
    turns = [Turn.from_text("failed", None), Turn.from_text("Q", "A"), Turn.from_text("blank", "  ")]
    assert [m["role"] for m in messages_for(turns)] == ["user", "assistant"]


def test_reconcile_ignores_reindented_text():
    recorded = [Turn.from_text("Q", "line one\n    line two")]
    kept = reconcile(recorded, [("Q", "line one\nline two")])
    assert kept[0] is recorded[0]


def test_reconcile_rebuilds_turns_the_service_never_recorded():
    assert messages_for(reconcile([], [("Q", "A")])) == [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": [{"type": "text", "text": "A"}]},
    ]


def test_a_web_page_file_part_is_read_as_a_file_of_the_user_message():
    shown = [
        {
            "role": "user",
            "content": [
                {
                    "type": "file",
                    "file": {"path": "/tmp/x/cat.png", "mime_type": "image/png"},
                    "alt_text": None,
                },
                {"type": "text", "text": "what is this?"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
    ]
    assert shown_pairs(shown) == [ShownPair("what is this?", "A cat.", ("/tmp/x/cat.png",))]


def test_an_api_client_file_part_is_read_as_a_file_of_the_user_message():
    shown = [
        {"role": "user", "content": [{"path": "/tmp/x/cat.png"}, "what is this?"]},
        {"role": "assistant", "content": "A cat."},
    ]
    assert shown_pairs(shown) == [ShownPair("what is this?", "A cat.", ("/tmp/x/cat.png",))]


def test_a_turn_with_files_matches_only_a_screen_showing_the_same_files():
    turn = Turn({"role": "user", "content": "Q"}, None, "Q", "A", ("cat.png",))
    assert turn.matches(ShownPair("Q", "A", ("/tmp/gradio/abc/cat.png",)))
    assert not turn.matches(ShownPair("Q", "A"))
    assert not turn.matches(ShownPair("Q", "A", ("/tmp/gradio/abc/dog.png",)))


def test_a_turn_rebuilt_from_the_screen_reads_its_files_again(tmp_path):
    path = write_image(tmp_path / "cat.png")
    [turn] = reconcile([], [ShownPair("what is this?", "A cat.", (str(path),))])
    content = turn.user["content"]
    assert [block["type"] for block in content] == ["image", "text"]
    assert content[1]["text"] == "what is this?"
    assert turn.shown_files == ("cat.png",)


def test_a_rebuilt_turn_whose_file_is_gone_says_so_instead_of_sending_nothing(tmp_path):
    [turn] = reconcile([], [ShownPair("", "A cat.", (str(tmp_path / "cat.png"),))])
    assert turn.user["content"] == [
        {
            "type": "text",
            "text": "[cat.png was attached here but is unavailable: "
            "Could not read cat.png: No such file or directory.]",
        }
    ]


@pytest.mark.parametrize("history", ["a string", 42, None, [{"role": "user", "content": "hi"}, "stray"]])
def test_malformed_history_is_refused_with_a_clear_error(history):
    with pytest.raises(ChatError, match="chat history"):
        shown_pairs(history)


def test_content_parts_that_are_not_text_are_ignored():
    history = [{"role": "user", "content": [{"type": "text", "text": 7}, {"text": "hi"}, 42, None]}]
    assert shown_pairs(history) == [ShownPair("hi", None)]


async def test_a_refused_history_leaves_the_conversation_as_it_was(settings):
    session = ChatSession(ScriptedClient(Scripted(["A1"])), settings)
    async with session.stream_reply("Q1") as reply:
        await reply.collect()
    before = session.messages
    with pytest.raises(ChatError):
        session.sync([{"role": "user", "content": "Q1"}, 3])
    assert session.messages == before
