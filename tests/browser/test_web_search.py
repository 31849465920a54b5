"""A web search in the page: the search box, the answer with numbered links to what it cites, the sources."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chat.offline import EXAMPLE_SOURCES
from tests.browser.chat_page import ChatPage, chromium
from tests.conftest import launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import fixture, replies
from ui.render import SOURCES_TITLE, USAGE_TITLE

SEARCH_TITLE = "Searched the web: weather NYC today"
WEATHER_URL = "https://world-weather.info/forecast/usa/new_york/may-2025/"
WEATHER_TITLE = "Weather in New York City in May 2025 (New York) - detailed Weather Forecast for a month"
ACCUWEATHER_URL = "https://www.accuweather.com/en/us/new-york/10021/weather-forecast/349727"
ACCUWEATHER_TITLE = "New York, NY Weather Forecast | AccuWeather"


def test_a_web_search_shows_the_search_the_cited_answer_and_its_sources(
    chat_page: ChatPage, loopback_api: LoopbackMessagesAPI
):
    loopback_api.script = replies(fixture("web_search.sse"))  # the recorded search, then echoes
    chat_page.ask("What is the weather in New York today?")
    chat_page.watch_answers(until=lambda answers: answers[-1:] and "umbrella" in answers[-1])
    chat_page.wait_until_idle()

    assert chat_page.boxes() == [SEARCH_TITLE, "Found 3 sources", SOURCES_TITLE, USAGE_TITLE]
    answer = chat_page.answer()
    assert answer.startswith("I'll check the current weather in New York City for you.")
    assert "a low around 55°F [1], and there is a 40% chance of showers this afternoon [2]." in answer
    assert chat_page.links() == [("[1]", WEATHER_URL), ("[2]", ACCUWEATHER_URL)]

    chat_page.open_box(SOURCES_TITLE)
    chat_page.wait_for_text("Tuesday, 20 May. Day +68°F, night +55°F. Mostly cloudy.")
    assert chat_page.links(SOURCES_TITLE) == [
        (WEATHER_TITLE, WEATHER_URL),
        (ACCUWEATHER_TITLE, ACCUWEATHER_URL),
    ]
    sources = next(part for part in chat_page.reply_parts() if part.title == SOURCES_TITLE)
    assert "Mostly cloudy with a couple of afternoon showers; chance of rain 40%." in sources.text
    assert chat_page.console_errors == []


@pytest.fixture
def offline_page(browser_available: None, tmp_path: Path) -> Iterator[ChatPage]:
    """The chat on the offline model (no key), paced as a demo is, in a fresh Chromium profile."""
    settings = make_settings(force_offline=True, offline_delay=0.02, data_dir=tmp_path / "data")
    with launched_app(settings) as url, chromium(tmp_path / "profile") as browser:
        page = ChatPage(browser.new_page(), url)
        page.open()
        yield page


def test_offline_a_question_about_today_shows_the_search_then_its_sources_and_cited_links(
    offline_page: ChatPage,
):
    offline_page.ask("What is the latest news today?")
    searching = "Searching the web: latest news today"
    offline_page.watch_parts(until=lambda parts: any(p.title == searching and p.pending for p in parts))
    offline_page.wait_until_idle()

    assert offline_page.boxes() == [
        "Searched the web: latest news today",
        "Found 3 sources",
        SOURCES_TITLE,
        USAGE_TITLE,
    ]
    (first, _, _), (second, _, _), _ = EXAMPLE_SOURCES
    assert offline_page.links() == [("[1]", first), ("[2]", second)]
    assert "made-up examples" in offline_page.answer()
    offline_page.open_box(SOURCES_TITLE)
    offline_page.wait_for_text("Each cited passage gets a numbered link to its page.")
    assert [href for _, href in offline_page.links(SOURCES_TITLE)] == [first, second]
    assert offline_page.console_errors == []
