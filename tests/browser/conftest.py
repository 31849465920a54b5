"""Fixtures for the browser tests: the real app on the loopback API, and a Chromium tab on it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat import Settings
from tests.browser.chat_page import ARTIFACTS, VIEWPORT, VIEWPORTS, ChatPage, chromium, missing_browser
from tests.conftest import launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    # Keep each phase's report on the test, so the page fixture knows at teardown whether it failed.
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def browser_available() -> None:
    """Skip without a browser; in CI (CI=true) a missing browser is a failure instead."""
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(f"browser tests need Chromium and Playwright: {reason}")


def loopback_settings(api: LoopbackMessagesAPI, data_dir: Path, **values: object) -> Settings:
    """The app's settings on the loopback API, with these service settings (make_settings names)."""
    return make_settings(api_key=TEST_KEY, base_url=api.url, data_dir=data_dir, **values)


@pytest.fixture
def app_settings(loopback_api: LoopbackMessagesAPI, tmp_path: Path) -> Settings:
    """The app's settings, on the loopback API; a test module overrides this fixture to change them."""
    return loopback_settings(loopback_api, tmp_path / "data")


@pytest.fixture
def app_url(app_settings: Settings) -> Iterator[str]:
    with launched_app(app_settings) as url:
        yield url


@pytest.fixture
def chat_page(
    browser_available: None, app_url: str, request: pytest.FixtureRequest, tmp_path
) -> Iterator[ChatPage]:
    """The chat open in a fresh Chromium profile; saves a screenshot if the test fails."""
    yield from opened_chat(app_url, request, tmp_path, VIEWPORT)


@pytest.fixture(params=list(VIEWPORTS))
def sized_chat_page(
    browser_available: None, app_url: str, request: pytest.FixtureRequest, tmp_path
) -> Iterator[ChatPage]:
    """`chat_page` in a window of each size a new visitor may have (a laptop's, a phone's)."""
    yield from opened_chat(app_url, request, tmp_path, VIEWPORTS[request.param])


def opened_chat(
    app_url: str, request: pytest.FixtureRequest, tmp_path: Path, viewport: dict[str, int]
) -> Iterator[ChatPage]:
    """The chat open in a fresh profile in a window of this size; a screenshot if the test failed."""
    with chromium(tmp_path / "profile", viewport) as browser:
        page = ChatPage(browser.new_page(), app_url)
        page.open()
        yield page
        call = request.node.stash.get(REPORTS, {}).get("call")
        if call is not None and call.failed:
            name = re.sub(r"[^\w.-]", "_", request.node.name)
            page.screenshot(ARTIFACTS / f"{name}.png")
