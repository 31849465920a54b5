"""Conversations kept on the server, in Chromium: answers outlive the tab, the sidebar, restarts, visitors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chat import Settings
from tests.browser.chat_page import ChatPage, chromium, chromiums
from tests.conftest import free_port, launched_app
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import echo_reply, echo_script
from ui.render import STOPPED_TITLE

LONG_ANSWER = " ".join(f"w{number}" for number in range(300))  # two words a delta: about 5 s


def slow_answer(body: dict) -> object:
    """The long answer to a conversation's first message; later ones are echoed."""
    return echo_reply(LONG_ANSWER, delay=0.03) if len(body["messages"]) == 1 else echo_script()(body)


@pytest.fixture
def two_visitors(
    browser_available: None, app_url: str, tmp_path: Path
) -> Iterator[tuple[ChatPage, ChatPage]]:
    """The chat open in two browsers (each a profile of its own): two visitors."""
    with chromiums(tmp_path / "first", tmp_path / "second") as browsers:
        pages = tuple(ChatPage(browser.new_page(), app_url) for browser in browsers)
        for page in pages:
            page.open()
        yield pages  # type: ignore[misc]


def test_a_reload_mid_answer_shows_the_answer_so_far_and_follows_it_to_the_end(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    loopback_api.script = slow_answer
    chat_page.ask("count for me")
    chat_page.wait_for_text("w20 ")
    chat_page.reload()
    chat_page.wait_for_text("w20 ")  # at once: what arrived while the tab was away
    seen = chat_page.watch_answers(until=lambda answers: answers[-1:] == [LONG_ANSWER], timeout=30)
    assert len(seen) > 2  # it grew on screen after the reload, not in one final jump
    assert len(loopback_api.requests) == 1  # the same answer, not asked again
    assert loopback_api.exchanges[0].finished_at is not None
    chat_page.send("and then?", "You said: and then?")
    assert [m["role"] for m in loopback_api.requests[-1]["messages"]] == ["user", "assistant", "user"]


def test_stop_in_a_reloaded_tab_closes_the_upstream_and_keeps_the_partial_answer(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    loopback_api.script = slow_answer
    chat_page.ask("count for me")
    chat_page.wait_for_text("w20 ")
    chat_page.reload()
    chat_page.wait_for_text("w20 ")
    chat_page.stop_answer()
    assert loopback_api.wait_for(lambda: loopback_api.exchanges[0].client_left_at is not None)
    chat_page.wait_for_text(STOPPED_TITLE)
    assert loopback_api.exchanges[0].finished_at is None
    shown = chat_page.answer()
    assert shown and LONG_ANSWER.startswith(shown) and shown != LONG_ANSWER


def test_a_chat_is_listed_at_once_and_a_new_chat_starts_empty(chat_page: ChatPage):
    chat_page.send("plan a picnic", "You said: plan a picnic")
    chat_page.wait_for_chats(["plan a picnic"])
    chat_page.new_chat()
    chat_page.wait_for_text_gone("You said: plan a picnic")
    chat_page.send("write a poem", "You said: write a poem")
    chat_page.wait_for_chats(["write a poem", "plan a picnic"])  # newest first


def test_switching_chats_shows_each_as_it_was_and_continues_it(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    chat_page.send("plan a picnic", "You said: plan a picnic")
    chat_page.new_chat()
    chat_page.send("write a poem", "You said: write a poem")
    chat_page.wait_for_chats(["write a poem", "plan a picnic"])
    chat_page.open_chat("plan a picnic")
    chat_page.wait_for_text("You said: plan a picnic")
    assert chat_page.answers() == ["You said: plan a picnic"]
    assert "Usage" in chat_page.boxes()  # its receipt too
    chat_page.send("with sandwiches", "You said: with sandwiches")
    sent = loopback_api.requests[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["plan a picnic", "with sandwiches"]


def test_renaming_a_chat_changes_its_title_in_the_list(chat_page: ChatPage):
    chat_page.send("plan a picnic", "You said: plan a picnic")
    chat_page.wait_for_chats(["plan a picnic"])
    chat_page.rename_chat("Saturday picnic")
    chat_page.wait_for_chats(["Saturday picnic"])
    chat_page.reload()
    chat_page.wait_for_chats(["Saturday picnic"])


def test_deleting_a_chat_asks_first_and_keeping_it_changes_nothing(chat_page: ChatPage):
    chat_page.send("plan a picnic", "You said: plan a picnic")
    chat_page.wait_for_chats(["plan a picnic"])
    chat_page.delete_chat(confirm=False)
    chat_page.wait_for_chats(["plan a picnic"])
    assert chat_page.answers() == ["You said: plan a picnic"]
    chat_page.delete_chat(confirm=True)
    chat_page.wait_for_chats([])
    chat_page.wait_for_text_gone("You said: plan a picnic")
    chat_page.reload()
    chat_page.wait_for_chats([])


def test_search_finds_chats_by_title_and_by_message_text(chat_page: ChatPage, loopback_api):
    chat_page.send("plan a picnic", "You said: plan a picnic")
    chat_page.new_chat()
    chat_page.send("write a poem", "You said: write a poem")
    chat_page.send("about the sea", "You said: about the sea")
    chat_page.wait_for_chats(["write a poem", "plan a picnic"])
    chat_page.search_chats("picnic")
    chat_page.wait_for_chats(["plan a picnic"])
    chat_page.search_chats("SEA")  # in a later message of the other chat, any case
    chat_page.wait_for_chats(["write a poem"])
    chat_page.search_chats("")
    chat_page.wait_for_chats(["write a poem", "plan a picnic"])


def test_a_second_browser_sees_none_of_the_first_ones_chats(two_visitors: tuple[ChatPage, ChatPage]):
    chat_page, second_visitor = two_visitors
    chat_page.send("my secret plan", "You said: my secret plan")
    chat_page.wait_for_chats(["my secret plan"])
    second_visitor.reload()
    second_visitor.wait_for_chats([])
    second_visitor.search_chats("secret")
    second_visitor.wait_for_chats([])
    assert second_visitor.answers() == []
    second_visitor.search_chats("")
    second_visitor.send("hello", "You said: hello")
    second_visitor.wait_for_chats(["hello"])
    chat_page.reload()
    chat_page.wait_for_chats(["my secret plan"])


def test_after_a_restart_the_chat_comes_back_and_continues(
    browser_available: None, app_settings: Settings, loopback_api: LoopbackMessagesAPI, tmp_path: Path
):
    port = free_port()
    with chromium(tmp_path / "profile") as browser:
        with launched_app(app_settings, port=port) as url:
            page = ChatPage(browser.new_page(), url)
            page.open()
            page.send("remember the milk", "You said: remember the milk")
            page.wait_for_chats(["remember the milk"])
        with launched_app(app_settings, port=port):
            page.reload()
            page.wait_for_chats(["remember the milk"])
            page.wait_for_text("You said: remember the milk")
            page.send("and the eggs", "You said: and the eggs")
    sent = loopback_api.requests[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["remember the milk", "and the eggs"]


def test_a_tab_left_open_across_a_restart_keeps_its_chat_and_continues_it(
    browser_available: None, app_settings: Settings, loopback_api: LoopbackMessagesAPI, tmp_path: Path
):
    port = free_port()
    with chromium(tmp_path / "profile") as browser:
        with launched_app(app_settings, port=port) as url:
            page = ChatPage(browser.new_page(), url)
            page.open()
            page.send("remember the milk", "You said: remember the milk")
        with launched_app(app_settings, port=port):  # no reload: the tab's session is new to the app
            # A person types after the restart; Gradio's page needs a moment to find the server
            # again (a message sent while it reconnects is lost by Gradio, with its own error).
            page.page.wait_for_timeout(2000)
            page.send("and the eggs", "You said: and the eggs")
            page.watch_answers(
                until=lambda answers: answers == ["You said: remember the milk", "You said: and the eggs"]
            )
            page.wait_for_chats(["remember the milk"])
    sent = loopback_api.requests[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["remember the milk", "and the eggs"]
