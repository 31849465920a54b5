"""The chat page in headless Chromium, driven the way a person uses it."""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, ConsoleMessage, Frame, Page

ROOT = Path(__file__).parent.parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Debian's Chromium, not Playwright's download: no sandbox (root in CI), no network chatter.
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
VIEWPORT = {"width": 1100, "height": 800}
# While a reload unloads the old document, Gradio's client aborts its own open streams and logs that
# as errors. They come from a page that is going away and no person sees them; only these two
# messages, and only in that window, are ignored.
UNLOAD_NOISE = re.compile(r"AbortError: signal is aborted without reason|Connection errored out")
WAIT_MS = 20_000  # every single browser wait is bounded by this


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing: pip install -e '.[dev]'"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
    return None


@contextmanager
def chromium(profile_dir: Path) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile; closed (with its driver) on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile_dir,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
            timeout=WAIT_MS,
        )
        try:
            yield context
        finally:
            context.close()


# A reply is one `.bot.message` group of messages; boxes (thinking, notes, usage) carry a
# `.thought-group` title, the answer itself does not.
ANSWER_PARTS = ".message:not(:has(.thought-group)) .message-content"


class ChatPage:
    """One browser tab on the chat, recording every console error and page error it sees."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.console_errors: list[str] = []
        self.unload_noise: list[str] = []
        self._unloading = False
        page.set_default_timeout(WAIT_MS)
        page.on("console", self._on_console)
        page.on("framenavigated", self._on_navigated)
        page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))

    def open(self) -> None:
        """Load the page and wait until it takes input (a Gradio page never goes network-idle)."""
        self.page.goto(self.url, wait_until="load")
        self.page.locator("textarea").wait_for(state="visible")

    def reload(self) -> None:
        """Reload the tab, as a person pressing F5."""
        self._unloading = True  # until the new document replaces the old one
        self.page.reload(wait_until="load")
        self.page.locator("textarea").wait_for(state="visible")

    def ask(self, question: str) -> None:
        """Type a question and press Enter."""
        textbox = self.page.locator("textarea")
        textbox.fill(question)
        textbox.press("Enter")

    def answers(self) -> list[str]:
        """The answer text of every reply on the page, oldest first (boxes such as Usage left out)."""
        return [
            "\n\n".join(group.locator(ANSWER_PARTS).all_inner_texts())
            for group in self.page.locator(".bot.message").all()
        ]

    def reply_text(self) -> str:
        """Everything the newest reply shows: its answer and the text of its open boxes."""
        return self.page.locator(".bot.message").last.inner_text()

    def boxes(self) -> list[str]:
        """The titles of the newest reply's boxes (Thinking, Stopped, Usage, ...), top to bottom."""
        return self.page.locator(".bot.message").last.locator(".thought-group .title").all_inner_texts()

    def answer(self) -> str:
        """The text of the newest answer bubble ('' before there is one)."""
        answers = self.answers()
        return answers[-1] if answers else ""

    def watch_answers(self, until: Callable[[list[str]], bool], timeout: float = 20.0) -> list[list[str]]:
        """Poll the answer bubbles until `until` holds; return each distinct state seen, in order."""
        seen: list[list[str]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answers = self.answers()
            if not seen or answers != seen[-1]:
                seen.append(answers)
            if until(answers):
                return seen
            self.page.wait_for_timeout(25)
        raise AssertionError(f"the answers never reached the expected state in {timeout}s; last: {seen[-1:]}")

    def wait_until_idle(self) -> None:
        """Wait until the answer is over: the Stop button gives way to Send again."""
        self.page.locator(".submit-button").wait_for(state="visible")

    def press_stop(self) -> None:
        """Click the Stop button shown while an answer streams."""
        self.page.locator(".stop-button").click()

    def error_message(self) -> str:
        """The text of the error notice the page shows (waits for one to appear)."""
        notice = self.page.get_by_test_id("toast-text").first
        notice.wait_for(state="visible")
        return notice.inner_text()

    def screenshot(self, path: Path) -> Path:
        """Save what the tab shows now as a PNG."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = f"console error: {message.text} ({message.location.get('url')})"
        if self._unloading and UNLOAD_NOISE.search(message.text):
            self.unload_noise.append(text)
        else:
            self.console_errors.append(text)

    def _on_navigated(self, frame: Frame) -> None:
        if frame == self.page.main_frame:
            self._unloading = False
