"""The page in a real browser: Stop's receipt, and retry / undo / edit keeping thinking history in step."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chat import Settings
from chat.wire import ScriptedMessage, TextBlock, ThinkingBlock, message_events, split_into_chunks
from tests.conftest import launched_app
from tests.loopback_api import LoopbackMessagesAPI, Stream
from tests.test_app_claude import thinking_script

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM} (set CHROMIUM)")


@pytest.fixture
def api() -> Iterator[LoopbackMessagesAPI]:
    with LoopbackMessagesAPI(thinking_script()) as api:
        yield api


@pytest.fixture
def page(api: LoopbackMessagesAPI) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    settings = Settings(api_key="sk-test-not-real", base_url=api.url, thinking=True)
    with launched_app(settings) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url, wait_until="load")
        page.wait_for_selector("textarea")
        try:
            yield page
        finally:
            browser.close()


def send(page: Any, api: LoopbackMessagesAPI, text: str) -> None:
    """Type a message, press Enter and wait until its answer has finished on the page."""
    asked = len(api.exchanges)
    box = page.locator("textarea").first
    box.fill(text)
    box.press("Enter")
    wait_for_answer(page, api, asked + 1)


def wait_for_answer(page: Any, api: LoopbackMessagesAPI, requests: int) -> None:
    """Wait for the n-th request to be streamed out and for the page to be ready again."""
    assert api.wait_for(lambda: len(api.exchanges) >= requests and api.exchanges[-1].finished_at, 20)
    page.wait_for_selector(".submit-button", state="visible")
    page.wait_for_function("document.querySelectorAll('.stop-button').length === 0")


def wait_for_text(page: Any, text: str) -> None:
    """Wait for the page to show this text; on timeout, fail with what it shows instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("text => document.body.innerText.includes(text)", arg=text)
    except PlaywrightTimeout:
        shown = [m.inner_text() for m in page.locator(".message").all()]
        raise AssertionError(f"the page never showed {text!r}; it shows {shown}") from None


def slow_long_answer(body: dict[str, Any]) -> Stream:
    words = " ".join(f"word{i}" for i in range(400))
    blocks = [ThinkingBlock(["Counting."], signature="sig-long"), TextBlock(split_into_chunks(words, 2))]
    return Stream(list(message_events(ScriptedMessage(blocks))), delay=0.05)


def test_stop_keeps_the_partial_answer_and_marks_it_stopped_with_tokens_received(page, api):
    api.script = slow_long_answer
    box = page.locator("textarea").first
    box.fill("count to 400")
    box.press("Enter")
    wait_for_text(page, "word20")
    page.click(".stop-button")
    wait_for_text(page, "tokens received")
    bot = page.locator(".bot.message").last.inner_text()
    assert "Stopped" in bot and "word20" in bot and "word399" not in bot
    assert api.wait_for(lambda: api.exchanges[0].client_left_at is not None)  # upstream closed at once


def test_the_answer_sent_back_after_a_stop_is_the_text_the_page_shows(page, api):
    api.script = slow_long_answer
    box = page.locator("textarea").first
    box.fill("count to 400")
    box.press("Enter")
    wait_for_text(page, "word20")
    page.click(".stop-button")
    wait_for_text(page, "tokens received")
    shown = page.locator(".bot.message").last.inner_text()
    api.script = thinking_script()
    send(page, api, "go on")
    answer = api.requests[1]["messages"][1]["content"]
    assert answer[0]["type"] == "text" and answer[0]["text"].split()[-1] in shown.split()
    assert len(answer) == 1 and "Stopped" not in answer[0]["text"]  # no thinking (unfinished), no receipt
    assert "tokens received" in page.locator(".bot.message").first.inner_text()  # the receipt stays


def test_retry_sends_earlier_thinking_with_its_signature_but_not_the_retried_turn(page, api):
    send(page, api, "first")
    send(page, api, "second")
    page.get_by_role("button", name="Retry", exact=True).first.click()
    wait_for_answer(page, api, 3)
    assert api.requests[2]["messages"] == [
        {"role": "user", "content": "first"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should answer turn 1.", "signature": "sig-1"},
                {"type": "text", "text": "Answer 1: first"},
            ],
        },
        {"role": "user", "content": "second"},
    ]


def test_undo_removes_the_last_turn_and_its_thinking_from_the_next_request(page, api):
    send(page, api, "first")
    send(page, api, "second")
    page.get_by_role("button", name="Undo", exact=True).first.click()
    page.wait_for_function("!document.body.innerText.includes('Answer 2')")
    send(page, api, "third")
    sent = api.requests[2]["messages"]
    assert [m["content"] if m["role"] == "user" else m["content"][0]["signature"] for m in sent] == [
        "first",
        "sig-1",
        "third",
    ]


def test_editing_the_first_message_sends_it_alone(page, api):
    send(page, api, "first")
    send(page, api, "second")
    page.get_by_role("button", name="Edit", exact=True).first.click()
    page.locator("textarea").first.fill("first, edited")
    page.get_by_role("button", name="Submit", exact=True).first.click()
    wait_for_answer(page, api, 3)
    assert api.requests[2]["messages"] == [{"role": "user", "content": "first, edited"}]


def test_clear_starts_the_running_total_again(page, api):
    send(page, api, "first")
    send(page, api, "second")
    page.get_by_role("button", name="Clear", exact=True).first.click()
    page.wait_for_function("!document.body.innerText.includes('Answer 2')")
    send(page, api, "third")
    page.get_by_text("Usage").last.click()
    wait_for_text(page, "This chat so far (1 answer,")
