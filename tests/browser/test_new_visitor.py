"""Issue 13's "done when", as one visit: a new user, offline, at a laptop's and a phone's size.

They see a full-height chat with starter prompts, ask for something current, and watch the
search, its sources and a cited answer stream; by turn 3 nothing overlaps and no stray bubble shows.
The laptop's picture is the README's screenshot (`make screenshot`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chat.offline import EXAMPLE_SOURCES
from tests.browser.chat_page import ARTIFACTS, VIEWPORTS, ChatPage, chromium
from tests.browser.test_chat_app_feel import COVERED_JS, FOOTER_GAP, LAYOUT_JS, STRAY_DOTS_JS
from tests.conftest import launched_app, make_settings
from ui.page import STARTER_PROMPTS
from ui.render import OFFLINE_COST, SOURCES_TITLE, USAGE_TITLE

SEARCH_STARTER = next(prompt for prompt in STARTER_PROMPTS if "latest" in prompt)
SCREENSHOT = "new-visitor-{size}.png"  # in test-artifacts/; the desktop one is docs/screenshot.png


@pytest.fixture(params=list(VIEWPORTS))
def visit(browser_available: None, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ChatPage]:
    """The offline app at a demo's pace (no key), in a fresh Chromium window of each size."""
    settings = make_settings(force_offline=True, offline_delay=0.02, data_dir=tmp_path / "data")
    with launched_app(settings) as url, chromium(tmp_path / "profile", VIEWPORTS[request.param]) as browser:
        page = ChatPage(browser.new_page(), url)
        page.size = request.param  # type: ignore[attr-defined]
        page.open()
        yield page


def test_a_new_visitor_sees_a_search_stream_into_a_cited_answer_and_nothing_overlaps(visit: ChatPage):
    layout = visit.page.evaluate(LAYOUT_JS)
    assert layout["page"] <= layout["window"] and layout["footer"]["bottom"] >= layout["window"] - FOOTER_GAP
    starters = visit.page.locator("#chat button.example")
    assert starters.count() == len(STARTER_PROMPTS) and starters.first.is_visible()

    starters.filter(has_text=SEARCH_STARTER).click()
    seen: list[str] = []

    def searched_then_cited(parts: list) -> bool:
        seen.extend(p.title for p in parts if p.pending and p.title.startswith("Searching the web"))
        return any(p.title == SOURCES_TITLE for p in parts)

    visit.watch_parts(until=searched_then_cited)
    visit.wait_until_idle()
    assert seen, "the search was never shown while it ran"
    assert visit.boxes() == [
        seen[-1].replace("Searching", "Searched"),
        "Found 3 sources",
        SOURCES_TITLE,
        USAGE_TITLE,
    ]
    (first, first_title, _), (second, _, _), _ = EXAMPLE_SOURCES
    assert visit.links() == [("[1]", first), ("[2]", second)]
    assert OFFLINE_COST in visit.reply_parts()[-1].note
    visit.open_box(SOURCES_TITLE)
    visit.page.get_by_role("link", name=first_title).wait_for()  # the opened box has drawn its list
    visit.page.wait_for_timeout(500)  # and finished unfolding: only the picture needs this
    visit.screenshot(ARTIFACTS / SCREENSHOT.format(size=visit.size))  # type: ignore[attr-defined]

    visit.ask("hello")
    visit.watch_answers(until=lambda answers: len(answers) == 2 and "\u201chello\u201d" in answers[-1])
    visit.wait_until_idle()
    visit.ask("and what about today?")
    stray: list[int] = []

    def third_answer_done(parts: list) -> bool:
        stray.append(visit.page.evaluate(STRAY_DOTS_JS))
        return any(p.title == USAGE_TITLE for p in parts) and len(visit.answers()) >= 3

    visit.watch_parts(until=third_answer_done)
    visit.wait_until_idle()
    assert max(stray) == 0, f"typing bubbles above a later message, per poll: {stray}"
    assert visit.page.evaluate(COVERED_JS) == [], "the toolbar or label covers message text"
    assert visit.page.evaluate("document.scrollingElement.scrollWidth <= innerWidth"), (
        "the page scrolls sideways"
    )
    assert visit.console_errors == []
