"""Files and export in the real page, driven by a real browser (Chromium), against the loopback API."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator

import pytest

from chat import Settings
from tests.conftest import launched_app, write_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")


@pytest.fixture
def page(loopback_api) -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    settings = Settings(api_key="sk-test-not-real", base_url=loopback_api.url)
    with launched_app(settings) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(url, wait_until="load")
        page.wait_for_selector("textarea")
        yield page
        browser.close()


def send(page, text: str) -> None:
    page.fill("textarea", text)
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.body.innerText.includes({json.dumps('You said: ' + text)})")


def test_a_file_attached_in_the_page_is_sent_and_kept_with_its_turn(page, loopback_api, tmp_path):
    page.set_input_files("input[type=file]:not([accept='.json'])", str(write_image(tmp_path / "red.png")))
    page.wait_for_selector("textarea")
    send(page, "what colour?")
    send(page, "and now?")
    first, second = loopback_api.requests
    assert [block["type"] for block in first["messages"][0]["content"]] == ["image", "text"]
    assert second["messages"][0] == first["messages"][0]


def test_a_conversation_loaded_in_the_page_is_shown_and_continued(page, loopback_api, tmp_path):
    image = base64.b64encode(write_image(tmp_path / "blue.png", size=(60, 40)).read_bytes()).decode()
    source = {"type": "base64", "media_type": "image/png", "data": image}
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "source": source}, {"type": "text", "text": "what is it?"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "A blue rectangle."}]},
    ]
    export = tmp_path / "conversation.json"
    export.write_text(json.dumps({"model": "claude-sonnet-5-5", "max_tokens": 9, "messages": messages}))
    page.set_input_files("input[type=file][accept='.json']", str(export))
    page.wait_for_function("document.body.innerText.includes('A blue rectangle.')")
    assert page.locator(".message img").count() >= 1
    send(page, "sure?")
    assert loopback_api.requests[-1]["messages"] == [*messages, {"role": "user", "content": "sure?"}]


def test_retry_sends_the_message_with_its_files_again(page, loopback_api, tmp_path):
    page.set_input_files("input[type=file]:not([accept='.json'])", str(write_image(tmp_path / "red.png")))
    send(page, "what colour?")
    page.get_by_label("Retry").click()
    assert loopback_api.wait_for(lambda: len(loopback_api.requests) == 2, timeout=30)
    assert loopback_api.requests[1] == loopback_api.requests[0]
