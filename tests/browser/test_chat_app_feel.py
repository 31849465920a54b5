"""The page as a new visitor first meets it, in a laptop's window and a phone's (issue 13).

Each test runs at both sizes (`sized_chat_page`), on the real app with Claude played by the loopback API.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chat.store import title_for
from tests.browser.chat_page import MESSAGE_BOX, ChatPage
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import Failure, echo_reply, replies
from ui.gradio_fixes import PHONE_WIDTH
from ui.page import CHAT_LABEL, STARTER_PROMPTS
from ui.render import FAILURE_CLASS, NOTICE_TITLE, USAGE_TITLE

FOOTER_GAP = 24  # px: the page's last line (its footer) ends at most this far above the window's bottom
LONG_ANSWER = " ".join(f"Sentence number {n} of a long answer that fills the chat." for n in range(60))
LAYOUT_JS = """() => ({
    window: innerHeight,
    page: document.scrollingElement.scrollHeight,
    chat: document.querySelector('#chat').getBoundingClientRect().toJSON(),
    footer: document.querySelector('footer').getBoundingClientRect().toJSON(),
})"""
# Waiting dots drawn above a later message: a reply's "typing" bubble that is not the last thing shown.
STRAY_DOTS_JS = """() => {
    const rows = document.querySelectorAll('#chat .message-row');
    const last = rows[rows.length - 1];
    return Array.from(document.querySelectorAll('#chat .message.pending'))
        .filter(dots => dots.getClientRects().length)
        .filter(dots => last && dots.compareDocumentPosition(last) & Node.DOCUMENT_POSITION_FOLLOWING)
        .length;
}"""
# The chat's label and toolbar, and the visible part of each message (clipped by the scrolling area).
COVERED_JS = """() => {
    const chat = document.querySelector('#chat');
    const area = chat.querySelector('.bubble-wrap').getBoundingClientRect();
    const overlays = [chat.querySelector('label'), chat.querySelector('.icon-button-wrapper.top-panel')]
        .filter(e => e && e.getClientRects().length).map(e => e.getBoundingClientRect());
    const covered = [];
    for (const text of chat.querySelectorAll('.message-content')) {
        const r = text.getBoundingClientRect();
        const top = Math.max(r.top, area.top), bottom = Math.min(r.bottom, area.bottom);
        if (bottom <= top) continue;  // scrolled out of sight
        for (const o of overlays) {
            if (o.left < r.right && r.left < o.right && o.top < bottom && top < o.bottom)
                covered.push(text.innerText.slice(0, 40));
        }
    }
    return covered;
}"""


def background(chat_page: ChatPage, box: Any) -> tuple[int, ...]:
    """A box's background colour as (red, green, blue)."""
    colour = box.evaluate("e => getComputedStyle(e).backgroundColor")
    return tuple(int(c) for c in re.findall(r"\d+", colour)[:3])


def test_the_chat_fills_the_window_height(sized_chat_page: ChatPage):
    layout = sized_chat_page.page.evaluate(LAYOUT_JS)
    assert layout["page"] <= layout["window"], f"the page scrolls: {layout}"
    assert layout["footer"]["bottom"] >= layout["window"] - FOOTER_GAP, (
        f"the page leaves a gap below: {layout}"
    )
    assert layout["chat"]["height"] >= layout["window"] / 2, f"the chat is not the page's main part: {layout}"


def test_an_empty_chat_shows_a_placeholder_and_starter_prompts(
    sized_chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    page = sized_chat_page.page
    placeholder = page.locator("#chat .placeholder")
    assert placeholder.is_visible() and "Ask Claude anything" in placeholder.inner_text()
    starters = page.locator("#chat button.example")
    assert [text.strip() for text in starters.all_inner_texts()] == list(STARTER_PROMPTS)
    assert all(starter.is_visible() for starter in starters.all())
    assert any(re.search(r"\b(latest|today|search)\b", prompt, re.IGNORECASE) for prompt in STARTER_PROMPTS)
    assert loopback_api.requests == [], "nothing may be asked of Claude before a visitor sends something"


def test_clicking_a_starter_prompt_sends_it(sized_chat_page: ChatPage, loopback_api: LoopbackMessagesAPI):
    prompt = STARTER_PROMPTS[0]
    sized_chat_page.page.locator("#chat button.example", has_text=prompt).click()
    sized_chat_page.wait_for_answer(f"You said: {prompt}")
    assert loopback_api.requests[-1]["messages"] == [{"role": "user", "content": prompt}]
    sized_chat_page.wait_for_chats([title_for(prompt)])  # listed in the sidebar, as a typed message is
    sized_chat_page.send("and then?", "You said: and then?")  # the chat goes on from it


def test_the_chat_is_labelled_for_what_it_is(sized_chat_page: ChatPage):
    label = sized_chat_page.page.locator("#chat label").first
    assert label.is_visible() and label.inner_text().strip() == CHAT_LABEL


def test_no_stray_typing_bubble_shows_above_the_new_question_at_turn_3(
    sized_chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    sized_chat_page.send("one", "You said: one")
    sized_chat_page.send("two", "You said: two")
    loopback_api.script = lambda body: echo_reply(
        "The third answer arrives slowly, a few words at a time.", delay=0.05
    )
    sized_chat_page.ask("three")
    stray = []

    def streamed(answers: list[str]) -> bool:
        stray.append(sized_chat_page.page.evaluate(STRAY_DOTS_JS))
        return answers[-1:] == ["The third answer arrives slowly, a few words at a time."]

    sized_chat_page.watch_answers(until=streamed)
    sized_chat_page.wait_until_idle()
    assert max(stray) == 0, f"typing bubbles above a later message, per poll: {stray}"


def test_a_failed_load_keeps_the_chat_and_says_why_once(sized_chat_page: ChatPage, tmp_path: Path):
    sized_chat_page.send("keep me", "You said: keep me")
    bad = tmp_path / "notes.json"
    bad.write_text('{"notes": []}')
    sized_chat_page.load_export(bad)

    assert "notes.json is not a conversation export" in sized_chat_page.error_message()
    assert sized_chat_page.page.get_by_test_id("toast-text").count() == 1
    assert sized_chat_page.answers() == ["You said: keep me"]
    assert sized_chat_page.page.locator("#chat .message-content").first.is_visible()
    assert "Error" not in sized_chat_page.page.locator("#chat > .wrap").inner_text(), (
        "an Error pill covers the chat"
    )


def test_a_failure_is_drawn_as_a_failure_unlike_the_usage_box_and_said_once(
    sized_chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    loopback_api.script = replies(
        echo_reply("A first answer, with its receipt."), Failure(400, "invalid_request_error", "bad request")
    )
    sized_chat_page.send("first", "A first answer, with its receipt.")
    sized_chat_page.ask("second")
    sized_chat_page.wait_for_text("bad request")
    sized_chat_page.wait_until_idle()

    page = sized_chat_page.page
    failure = page.locator(f".thought-group:has(.{FAILURE_CLASS})")
    usage = page.locator(".thought-group", has=page.locator(".title", has_text=USAGE_TITLE)).first
    assert sized_chat_page.boxes()[-1] == NOTICE_TITLE
    red, green, blue = background(sized_chat_page, failure)
    assert red > green + 10 and red > blue + 10, f"the failure's box is not red-ish: {(red, green, blue)}"
    assert background(sized_chat_page, failure) != background(sized_chat_page, usage)
    assert page.get_by_test_id("toast-text").count() == 0, "the failure is in the chat: no toast repeats it"


def test_the_toolbar_and_label_never_cover_message_text(
    sized_chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    loopback_api.script = lambda body: echo_reply(LONG_ANSWER, words_per_chunk=50)
    sized_chat_page.send("a long one please", LONG_ANSWER)
    area = sized_chat_page.page.locator("#chat .bubble-wrap")
    for position in ("0", "e.scrollHeight / 2", "e.scrollHeight"):
        area.evaluate(f"e => e.scrollTo(0, {position})")
        sized_chat_page.page.wait_for_function("() => true")  # a frame for the scroll to land
        covered = sized_chat_page.page.evaluate(COVERED_JS)
        assert covered == [], f"scrolled to {position}, the toolbar or label covers: {covered}"


def test_the_header_names_the_model_by_its_friendly_name(sized_chat_page: ChatPage):
    text = sized_chat_page.page.locator("p", has_text="Model:").first.inner_text()
    assert "Claude Sonnet 5.5" in text and "claude-sonnet-5-5" not in text, text


def test_export_offers_clearly_labelled_download_buttons(sized_chat_page: ChatPage):
    sized_chat_page.send("export me", "You said: export me")
    page = sized_chat_page.page
    page.get_by_role("button", name="Export conversation", exact=True).click()
    markdown = page.get_by_role("button", name="Download Markdown (.md)")
    markdown.wait_for(state="visible")
    assert page.get_by_role("button", name="Download JSON (.json)").is_visible()
    with page.expect_download() as download:
        markdown.click()
    assert download.value.suggested_filename == "conversation.md"


def test_the_footer_has_no_second_settings(sized_chat_page: ChatPage):
    footer = sized_chat_page.page.locator("footer").inner_text()
    assert "Built with Gradio" in footer and "Settings" not in footer
    assert not footer.strip().endswith("·"), f"a divider dangles at the footer's end: {footer!r}"
    assert sized_chat_page.page.get_by_text("Settings", exact=True).count() == 1  # the chat's own


def test_the_sidebar_starts_open_on_a_laptop_and_closed_on_a_phone(sized_chat_page: ChatPage):
    page = sized_chat_page.page
    opened = page.viewport_size["width"] > PHONE_WIDTH
    page.wait_for_function(
        "opened => (document.querySelector('.sidebar.open') !== null) === opened", arg=opened
    )
    box = page.locator(MESSAGE_BOX).bounding_box()
    middle = [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]
    uncovered = "([x, y]) => document.elementFromPoint(x, y).closest('#message-box') !== null"
    assert page.evaluate(uncovered, middle), "something covers the message box"


def test_the_sidebar_meters_the_open_chats_context_after_each_answer_and_switch(chat_page: ChatPage):
    meter = chat_page.page.locator("#context-meter")
    assert meter.inner_text().strip() == "Context: 0 of 1M tokens"
    chat_page.send("one", "You said: one")
    chat_page.page.locator(".title", has_text=USAGE_TITLE).last.wait_for()
    receipt = chat_page.reply_parts()[-1].note
    shown = re.search(r"Context: \S+ of 1M tokens", receipt)
    assert shown is not None, receipt
    chat_page.page.wait_for_function(
        "text => document.querySelector('#context-meter').innerText.trim() === text", arg=shown.group(0)
    )
    chat_page.new_chat()
    chat_page.page.wait_for_function(
        "() => document.querySelector('#context-meter').innerText.trim() === 'Context: 0 of 1M tokens'"
    )
