"""Reading what the screen shows into turns, and the message list sent to Claude."""

from __future__ import annotations

from chat.history import Turn, messages_for, reconcile, shown_pairs


def test_plain_string_history_becomes_pairs():
    shown = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    assert shown_pairs(shown) == [("Q", "A")]


def test_web_page_history_with_text_parts_becomes_pairs():
    shown = [
        {"role": "user", "content": [{"type": "text", "text": "Q"}], "metadata": None, "options": None},
        {"role": "assistant", "content": [{"type": "text", "text": "A"}], "metadata": None},
    ]
    assert shown_pairs(shown) == [("Q", "A")]


def test_display_only_boxes_are_not_part_of_the_answer():
    shown = [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "pondering", "metadata": {"title": "Thinking"}},
        {"role": "assistant", "content": "A"},
        {"role": "assistant", "content": "12 tokens", "metadata": {"title": "Usage"}},
    ]
    assert shown_pairs(shown) == [("Q", "A")]


def test_a_user_message_without_answer_is_an_unanswered_pair():
    shown = [{"role": "user", "content": "failed"}, {"role": "user", "content": "next"}]
    assert shown_pairs(shown) == [("failed", None), ("next", None)]


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
