"""A failure seen in a real browser: the partial answer stays, the notice shows, Retry works."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from chat import Settings
from tests.conftest import launched_app
from tests.loopback_api import LoopbackMessagesAPI, error_mid_stream, replies

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
PARTIAL = "The first half of an answer"

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="needs chromium (apt-get install chromium)"
)


@pytest.fixture
def page() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_after_an_overload_mid_stream_the_page_keeps_the_answer_and_retry_asks_again(page):
    with LoopbackMessagesAPI(replies(error_mid_stream(PARTIAL))) as api:
        settings = Settings(api_key="sk-test-not-real", base_url=api.url, max_retries=0)
        with launched_app(settings) as url:
            page.goto(url, wait_until="load")
            page.fill("textarea", "question")
            page.keyboard.press("Enter")
            answer = page.locator(".bot.message").last
            sync_api.expect(answer).to_contain_text("overloaded mid-answer", timeout=15_000)
            sync_api.expect(answer).to_contain_text(PARTIAL)
            sync_api.expect(page.locator("textarea")).to_be_enabled()

            page.get_by_role("button", name="Retry").click()
            sync_api.expect(page.locator(".bot.message").last).to_contain_text(
                "You said: question", timeout=15_000
            )
            sync_api.expect(page.locator(".bot.message")).to_have_count(1)
            assert api.requests[-1]["messages"] == [{"role": "user", "content": "question"}]
