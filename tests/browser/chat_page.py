"""The chat page in headless Chromium, driven the way a person uses it."""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, ConsoleMessage, Frame, Locator, Page

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
# The sizes a new visitor's window is tried at: a laptop, and a phone held upright.
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
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
def chromium(profile_dir: Path, viewport: dict[str, int] = VIEWPORT) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile and this window size; closed (with its driver) on exit."""
    with chromiums(profile_dir, viewport=viewport) as (context,):
        yield context


@contextmanager
def chromiums(
    *profile_dirs: Path, viewport: dict[str, int] = VIEWPORT
) -> Iterator[tuple[BrowserContext, ...]]:
    """One headless Chromium per fresh profile (separate browsers: nothing stored is shared)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        contexts: list[BrowserContext] = []
        try:
            for profile_dir in profile_dirs:
                contexts.append(
                    playwright.chromium.launch_persistent_context(
                        profile_dir,
                        executable_path=str(CHROMIUM),
                        args=CHROMIUM_ARGS,
                        headless=True,
                        viewport=viewport,
                        timeout=WAIT_MS,
                    )
                )
            yield tuple(contexts)
        finally:
            for context in contexts:
                context.close()


# A reply is one `.bot.message` group of messages; boxes (thinking, notes, usage) carry a
# `.thought-group` title, the answer itself does not. While a reply is awaited Gradio also shows a
# `.bot.message.pending` loading bubble (three dots): an indicator, not a reply, so it is left out.
REPLIES = ".bot.message:not(.pending)"
ANSWER_PARTS = ".message:not(:has(.thought-group)) .message-content"
# One snapshot of the page in one call, so a render between two queries cannot mix two states.
ANSWERS_JS = """([replies, parts]) => Array.from(document.querySelectorAll(replies)).map(
    reply => Array.from(reply.querySelectorAll(parts)).map(part => part.innerText).join("\\n\\n"))"""
PARTS_JS = """(replies) => {
    const all = document.querySelectorAll(replies);
    if (!all.length) return [];
    return Array.from(all[all.length - 1].querySelectorAll(".message")).map(message => {
        const box = message.querySelector(".thought-group");
        if (!box) {
            const text = message.querySelector(".message-content");
            return {title: "", text: text ? text.innerText : "", pending: false, open: true, note: ""};
        }
        const title = box.querySelector(".title");
        const body = box.querySelector(".content");
        const note = title.querySelector(".duration");
        return {
            title: title.querySelector(".md").innerText.trim(),
            text: body ? body.innerText : "",
            pending: title.querySelector(".loading-spinner") !== null,
            open: title.classList.contains("expanded"),
            note: note ? note.innerText.trim() : "",
        };
    });
}"""
LINKS_JS = """([replies, where]) => {
    const all = document.querySelectorAll(replies);
    if (!all.length) return [];
    return Array.from(all[all.length - 1].querySelectorAll(where + " a")).map(
        link => ({text: link.innerText.trim(), href: link.getAttribute("href")}));
}"""
CHAT_LIST = "#chat-list label"
MESSAGE_BOX = "#message-box textarea"
TITLE_BOX = "#chat-title textarea"
EDIT_BOX = ".message textarea"  # a message being edited, in the chat
MESSAGE_BOX_FILES = "input[type=file]:not([accept='.json'])"
EXPORT_FILE = "input[type=file][accept='.json']"


@dataclass(frozen=True)
class ReplyPart:
    """One part of a reply as shown: a box (with a title) or answer text (title '')."""

    title: str
    text: str  # a box's body, '' while it is collapsed
    pending: bool = False  # a spinner beside the title
    open: bool = True
    note: str = ""  # the line beside a box's title: its log and duration, e.g. "(1.2s)"


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
        self.message_box().wait_for(state="visible")

    def reload(self) -> None:
        """Reload the tab, as a person pressing F5."""
        self._unloading = True  # until the new document replaces the old one
        self.page.reload(wait_until="load")
        self.message_box().wait_for(state="visible")

    def message_box(self) -> Locator:
        """The box a message is typed into."""
        return self.page.locator(MESSAGE_BOX)

    def ask(self, question: str, files: Sequence[Path] = ()) -> None:
        """Attach these files (if any), type a question and press Enter."""
        if files:
            self.attach(files)
        textbox = self.message_box()
        textbox.fill(question)
        textbox.press("Enter")

    def attach(self, files: Sequence[Path]) -> None:
        """Attach files to the message box and wait until they are uploaded."""
        self.page.set_input_files(MESSAGE_BOX_FILES, [str(path) for path in files])
        self.page.locator("[aria-label='Uploaded files'] .thumbnail-item").first.wait_for()
        self.page.wait_for_function("!document.querySelector(\"[role=status][aria-label='Uploading']\")")

    def send(self, question: str, answer: str, files: Sequence[Path] = ()) -> None:
        """Ask, then wait until the page shows this answer and takes input again."""
        self.ask(question, files)
        self.wait_for_answer(answer)

    def wait_for_answer(self, answer: str) -> None:
        """Wait until the newest reply's answer is this text and the answer is over."""
        self.watch_answers(until=lambda answers: answers[-1:] == [answer])
        self.wait_until_idle()

    def answers(self) -> list[str]:
        """The answer text of every reply on the page, oldest first (boxes such as Usage left out)."""
        return self.page.evaluate(ANSWERS_JS, [REPLIES, ANSWER_PARTS])

    def reply_text(self, index: int = -1) -> str:
        """Everything a reply (the newest by default) shows: its answer and the text of its open boxes."""
        return self.page.locator(REPLIES).nth(index).inner_text()

    def reply_parts(self) -> list[ReplyPart]:
        """The newest reply's boxes and answer text, top to bottom."""
        return [ReplyPart(**part) for part in self.page.evaluate(PARTS_JS, REPLIES)]

    def boxes(self) -> list[str]:
        """The titles of the newest reply's boxes (Thinking, Stopped, Usage, ...), top to bottom."""
        return [part.title for part in self.reply_parts() if part.title]

    def links(self, box: str = "") -> list[tuple[str, str]]:
        """The (text, href) of each link in the newest reply's answer, or in its open box with this title."""
        if not box:
            return [
                (link["text"], link["href"]) for link in self.page.evaluate(LINKS_JS, [REPLIES, ANSWER_PARTS])
            ]
        return [
            (link.inner_text().strip(), link.get_attribute("href") or "")
            for link in self._box(box).locator(".content a").all()
        ]

    def open_box(self, title: str) -> None:
        """Click the newest reply's box with this title, to open (or close) it."""
        self._box(title).locator(".title").first.click()

    def _box(self, title: str) -> Locator:
        """The newest reply's box with exactly this title ("Sources" is not "Found 3 sources")."""
        exact = self.page.locator(".title .md", has_text=re.compile(f"^\\s*{re.escape(title)}\\s*$"))
        return self.page.locator(REPLIES).last.locator(".thought-group", has=exact).first

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

    def watch_parts(self, until: Callable[[list[ReplyPart]], bool], timeout: float = 20.0) -> None:
        """Poll the newest reply's boxes and text until `until` holds; fail saying what was shown last."""
        parts: list[ReplyPart] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            parts = self.reply_parts()
            if until(parts):
                return
            self.page.wait_for_timeout(25)
        raise AssertionError(f"the reply never reached the expected state in {timeout}s; last: {parts}")

    def wait_until_idle(self) -> None:
        """Wait until the answer is over: the Stop button gives way to Send, the box takes input again."""
        self.page.locator(".submit-button").wait_for(state="visible")
        self.page.wait_for_function("document.querySelectorAll('.stop-button').length === 0")
        self.page.wait_for_function("box => !document.querySelector(box).disabled", arg=MESSAGE_BOX)

    def wait_for_text(self, text: str) -> None:
        """Wait until the page shows this text; on timeout, fail saying what it shows instead."""
        self._wait_for_page("text => document.body.innerText.includes(text)", text, f"never showed {text!r}")

    def wait_for_text_gone(self, text: str) -> None:
        """Wait until the page no longer shows this text."""
        self._wait_for_page("text => !document.body.innerText.includes(text)", text, f"still shows {text!r}")

    def press_stop(self) -> None:
        """Click the Stop button shown while an answer streams."""
        self.page.locator(".stop-button").click()

    def press(self, button: str) -> None:
        """Click the first chat button with this name: Retry, Undo, Edit, Clear."""
        self.page.get_by_role("button", name=button, exact=True).first.click()

    def edit_first_message(self, text: str) -> None:
        """Edit the first message of the chat to this text and submit the edit."""
        self.press("Edit")
        self.page.locator(EDIT_BOX).first.fill(text)
        self.press("Submit")

    def load_export(self, path: Path) -> None:
        """Load a conversation from a JSON export with the page's Load button."""
        self.page.set_input_files(EXPORT_FILE, str(path))

    def images_shown(self, at_least: int = 1) -> int:
        """How many images the chat shows, once it shows at least this many (they render after text)."""
        images = self.page.locator(".message img")
        images.nth(at_least - 1).wait_for(state="visible")
        return images.count()

    # --- the sidebar of stored chats ---------------------------------------------------------------

    def chat_titles(self) -> list[str]:
        """The titles the sidebar lists, top (newest) first."""
        return [title.strip() for title in self.page.locator(CHAT_LIST).all_inner_texts()]

    def wait_for_chats(self, titles: list[str], timeout: float = 20.0) -> None:
        """Wait until the sidebar lists exactly these titles, in this order."""
        deadline = time.monotonic() + timeout
        while self.chat_titles() != titles:
            if time.monotonic() > deadline:
                raise AssertionError(f"the sidebar lists {self.chat_titles()}, not {titles}")
            self.page.wait_for_timeout(25)

    def open_chat(self, title: str) -> None:
        """Click a chat in the sidebar."""
        self.page.locator(CHAT_LIST, has_text=title).first.click()

    def new_chat(self) -> None:
        """Press New chat."""
        self.page.get_by_role("button", name="New chat", exact=True).click()

    def rename_chat(self, title: str) -> None:
        """Type a new title for the open chat and press Enter."""
        box = self.page.locator(TITLE_BOX)
        box.fill(title)
        box.press("Enter")

    def delete_chat(self, confirm: bool) -> None:
        """Press Delete this chat, then confirm it or keep the chat."""
        self.page.get_by_role("button", name="Delete this chat", exact=True).click()
        answer = "Delete" if confirm else "Keep it"
        self.page.get_by_role("button", name=answer, exact=True).click()

    def search_chats(self, query: str) -> None:
        """Type into the sidebar's search box."""
        self.page.get_by_placeholder("Search chats").fill(query)

    def stop_answer(self) -> None:
        """Click the Stop button a re-opened chat shows while its answer still streams."""
        self.page.get_by_role("button", name="Stop the answer", exact=True).click()

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

    def _wait_for_page(self, condition: str, text: str, failure: str) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(condition, arg=text)
        except PlaywrightTimeout:
            shown = self.page.locator(".message").all_inner_texts()
            raise AssertionError(f"the page {failure}; it shows {shown}") from None

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
